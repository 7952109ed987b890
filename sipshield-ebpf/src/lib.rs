//! Empty library target: lets `sipshield` name this crate as a
//! build-dependency (so cargo rebuilds it when the program changes). The XDP
//! program itself is the `sipshield` binary target (`main.rs`).
#![no_std]
