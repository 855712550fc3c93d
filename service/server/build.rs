//! Compiles the part of OTLP that the span exporter sends (protoc from the
//! system: scripts/setup.sh installs it).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    tonic_prost_build::configure().compile_protos(&["proto/otlp_trace.proto"], &["proto"])?;
    println!("cargo:rerun-if-changed=proto");
    Ok(())
}
