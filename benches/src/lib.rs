//! Criterion benchmarks of Volta live in `benches/benches/`; this library is
//! empty. Run them with `cargo bench -p volta-benches`.
