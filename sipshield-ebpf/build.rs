//! Link flags for the BPF object. x86-64 and arm64 kernels allow misaligned
//! loads from map values, so a word of the payload copy is one load instead
//! of eight byte loads and shifts.
fn main() {
    println!("cargo:rustc-link-arg=--cpu-features=+allows-misaligned-mem-access");
}
