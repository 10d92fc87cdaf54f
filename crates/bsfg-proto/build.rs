//! Compiles `proto/bsfg/v1/boundary.proto` with protox (pure Rust, no system
//! `protoc`), then generates prost messages, tonic stubs and pbjson serde impls
//! from the same descriptor set so the binary and JSON forms cannot drift.

use prost::Message;
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto = "proto/bsfg/v1/boundary.proto";
    println!("cargo:rerun-if-changed={proto}");
    let fds = protox::compile([proto], ["proto"])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let descriptor_bytes = fds.encode_to_vec();
    std::fs::write(out_dir.join("bsfg_descriptor.bin"), &descriptor_bytes)?;

    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;

    pbjson_build::Builder::new()
        .register_descriptors(&descriptor_bytes)?
        .build(&[".bsfg.v1"])?;
    Ok(())
}
