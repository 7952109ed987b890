//! Shared helpers for the integration tests: a packet builder, a harness
//! around BPF_PROG_TEST_RUN, and RAII guards for network namespaces.

pub mod bench;
pub mod crowdsec;
pub mod daemon;
pub mod harness;
pub mod lab;
pub mod netns;
pub mod packet;
pub mod registrar;
