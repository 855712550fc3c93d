//! Compiles the gRPC protos (protoc from the system: scripts/setup.sh installs it).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    tonic_prost_build::configure().file_descriptor_set_path(out.join("volta_descriptor.bin")).compile_protos(
        &[
            "proto/volta/common/v1/common.proto",
            "proto/volta/dispatch/v1/dispatch.proto",
            "proto/volta/forecast/v1/forecast.proto",
            "proto/volta/planning/v1/planning.proto",
            "proto/volta/contracts/v1/contracts.proto",
            "proto/volta/trading/v1/trading.proto",
        ],
        &["proto"],
    )?;
    println!("cargo:rerun-if-changed=proto");
    Ok(())
}
