//! Compiles `proto/` with protox, a pure-Rust compiler, so a fresh machine needs no `protoc`.

use std::path::{Path, PathBuf};

use prost::Message;

const PROTO_ROOT: &str = "../../proto";
const PROTOS: &[&str] = &[
    "fulfillment/common/v1/common.proto",
    "fulfillment/catalog/v1/catalog.proto",
    "fulfillment/inventory/v1/inventory.proto",
    "fulfillment/reservation/v1/reservation.proto",
    "fulfillment/access/v1/access.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // tonic-prost-build 0.14 does not print these itself: without them proto edits would not rebuild.
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={PROTO_ROOT}/{proto}");
    }

    let descriptors = protox::compile(PROTOS, [PROTO_ROOT])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(Path::new(&out_dir).join("fulfillment_descriptor.bin"), descriptors.encode_to_vec())?;
    tonic_prost_build::configure().codec_path("crate::codec::InvalidArgumentCodec").compile_fds(descriptors)?;
    Ok(())
}
