//! Pull and push throughput against local `docker-registry` instances, for bench/.
//!
//! Makes an image of `BENCH_LAYERS` (3) layers of `BENCH_LAYER_MIB` (64) MiB of random
//! bytes, then times, each on fresh state:
//! - push from a storage without compressed blobs (gzip on the fly) to registry A;
//! - pull from A into a fresh storage;
//! - pull of the same image again (already present: one manifest resolve);
//! - push of the pulled image (stored blobs) to a fresh registry B.
//!
//! Prints one line per measure and, last, a JSON object with the numbers (MB = 10^6
//! bytes). Needs root (layers are unpacked with their owners) and `docker-registry`.
//!
//! ```text
//! cargo run --release -p berth-registry --example registry_bench
//! ```

#[path = "../tests/common/mod.rs"]
mod common;

use berth_registry::{Platform, Registry, RegistryConfig};
use common::*;
use rand::RngCore;
use std::time::Instant;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn mbps(bytes: u64, secs: f64) -> f64 {
    bytes as f64 / 1e6 / secs
}

fn main() {
    if !require_root("registry_bench") {
        return;
    }
    let layers = env_usize("BENCH_LAYERS", 3);
    let mib = env_usize("BENCH_LAYER_MIB", 64);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run(layers, mib));
}

async fn run(layers: usize, mib: usize) {
    let mut rng = rand::thread_rng();
    let tars: Vec<Vec<u8>> = (0..layers)
        .map(|i| {
            let mut data = vec![0u8; mib << 20];
            rng.fill_bytes(&mut data);
            layer_tar(&[(format!("layer{i}/data.bin").as_str(), &data)])
        })
        .collect();
    let total: u64 = tars.iter().map(|t| t.len() as u64).sum();
    let src = TestStorage::new();
    let img = make_image(&src.storage, tars, "amd64", Stored::Nothing);
    let platform: Platform = "linux/amd64".parse().unwrap();
    let quiet = |_: berth_registry::Progress| {};

    let reg_a = TestRegistry::start();
    let reference = reg_a.reference("bench/image:latest");
    let r = Registry::new(RegistryConfig::default());
    let t = Instant::now();
    r.push(
        src.storage.clone(),
        &reference,
        &img.config,
        &img.chains,
        None,
        &quiet,
    )
    .await
    .unwrap();
    let push_gzip = t.elapsed().as_secs_f64();

    let dest = TestStorage::new();
    let r = Registry::new(RegistryConfig::default());
    let t = Instant::now();
    let pulled = r
        .pull(dest.storage.clone(), &reference, &platform, None, &quiet)
        .await
        .unwrap();
    let pull = t.elapsed().as_secs_f64();
    let compressed: u64 = pulled.manifest.layers.iter().map(|l| l.size).sum();

    let t = Instant::now();
    let resolved = r.resolve(&reference, &platform, None).await.unwrap();
    let present = t.elapsed().as_secs_f64();
    assert_eq!(resolved.digest, pulled.manifest_digest);

    let reg_b = TestRegistry::start();
    let r = Registry::new(RegistryConfig::default());
    let t = Instant::now();
    r.push(
        dest.storage.clone(),
        &reg_b.reference("bench/image:latest"),
        &pulled.config,
        &img.chains,
        None,
        &quiet,
    )
    .await
    .unwrap();
    let push_stored = t.elapsed().as_secs_f64();

    println!(
        "image: {layers} layers x {mib} MiB random = {:.1} MB uncompressed, {:.1} MB compressed",
        total as f64 / 1e6,
        compressed as f64 / 1e6
    );
    println!(
        "push (gzip on the fly):  {push_gzip:.3} s  {:.1} MB/s",
        mbps(total, push_gzip)
    );
    println!(
        "pull into fresh storage: {pull:.3} s  {:.1} MB/s",
        mbps(compressed, pull)
    );
    println!("pull already present (resolve): {:.1} ms", present * 1000.0);
    println!(
        "push (stored blobs):     {push_stored:.3} s  {:.1} MB/s",
        mbps(compressed, push_stored)
    );
    println!(
        "{}",
        serde_json::json!({
            "bytes_uncompressed": total,
            "bytes_compressed": compressed,
            "push_gzip_s": push_gzip,
            "push_gzip_mbps": mbps(total, push_gzip),
            "pull_s": pull,
            "pull_mbps": mbps(compressed, pull),
            "pull_present_ms": present * 1000.0,
            "push_stored_s": push_stored,
            "push_stored_mbps": mbps(compressed, push_stored),
        })
    );
}
