use volta_dispatch::{Options, schedule};
use volta_engine::Case;

#[test]
fn smoke() {
    for name in ["campus.toml", "islanded.toml"] {
        let case = Case::from_path(volta_datasets::case(name)).unwrap();
        let t = std::time::Instant::now();
        let s = schedule(&case, &Options::default()).unwrap();
        let plan = s.schedule.as_ref().unwrap();
        eprintln!("{name}: {:?} obj {:?} bound {:?} gap {:?} cost {} co2 {} stats {:?} in {:?}", s.status, s.objective, s.best_bound, s.gap, plan.cost, plan.co2_kg, s.stats, t.elapsed());
        for b in &plan.buses { eprintln!("  {} price[0..6] {:?}", b.id, b.price.as_ref().map(|p| p[..6].to_vec())); }
        eprintln!("  {:?}", plan.cost_by_category());
    }
}
