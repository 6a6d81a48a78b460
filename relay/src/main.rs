//! The `mediblock` binary.

fn main() {
    println!("mediblock {}: the relay service is not built yet", env!("CARGO_PKG_VERSION"));
}
