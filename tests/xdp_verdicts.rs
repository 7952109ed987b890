//! The XDP program's decisions, one by one, on hand-built packets
//! (BPF_PROG_TEST_RUN: no NIC, no namespace). Needs root.

use sipshield_tests::{harness::*, packet::*};

#[test]
fn loads_and_passes_unlisted_non_sip_udp() {
    let mut h = Harness::new();
    let f = Frame::udp("192.0.2.10", 53, b"hello").build();
    assert_eq!(h.run(&f), XDP_PASS);
}
