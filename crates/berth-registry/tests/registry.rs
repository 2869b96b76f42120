//! Pull, push, login and search against a real `docker-registry` (distribution 2.8) on
//! 127.0.0.1, started per test with its own storage and config. Root tests: layers are
//! unpacked with their owners and modes.

mod common;

use berth_core::error::{ErrorKind, HasKind};
use berth_core::Digest;
use berth_registry::manifest::{self, Descriptor, ImageIndex, PlatformSpec};
use berth_registry::{Credentials, Platform, Progress, Registry, RegistryConfig, RegistryError};
use common::*;
use std::sync::Arc;

fn registry() -> Registry {
    Registry::new(RegistryConfig::default())
}

fn amd64() -> Platform {
    "linux/amd64".parse().unwrap()
}

fn small_layers() -> Vec<Vec<u8>> {
    vec![
        layer_tar(&[("etc/hostname", b"box\n"), ("bin/tool", &[7u8; 300_000])]),
        layer_tar(&[("app/data", &rand_bytes(200_000)), ("app/readme", b"hi")]),
        layer_tar(&[("etc/hostname", b"other\n")]),
    ]
}

fn rand_bytes(n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut v);
    v
}

/// Checks that `dest` holds exactly the layers of `img` (same diff_ids, same tar bytes).
fn assert_same_layers(dest: &TestStorage, img: &LocalImage, pulled: &berth_registry::PulledImage) {
    assert_eq!(pulled.layers.len(), img.chains.len());
    for (i, l) in pulled.layers.iter().enumerate() {
        assert_eq!(l.diff_id, img.diff_ids[i]);
        assert_eq!(l.chain_id, img.chains[i]);
        let mut tar = Vec::new();
        dest.storage.layer_tar(&l.chain_id, &mut tar).unwrap();
        assert_eq!(tar, img.tars[i], "layer {i} content");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn push_then_pull_round_trips_an_image_into_a_fresh_storage() {
    if !require_root("push_then_pull_round_trips_an_image_into_a_fresh_storage") {
        return;
    }
    let reg = TestRegistry::start();
    let src = TestStorage::new();
    let img = make_image(&src.storage, small_layers(), "amd64", Stored::Nothing);
    let r = registry();
    let reference = reg.reference("app/round:v1");
    let events = Events::default();
    let pushed = r
        .push(
            src.storage.clone(),
            &reference,
            &img.config,
            &img.chains,
            None,
            &events.sink(),
        )
        .await
        .unwrap();
    assert_eq!(
        events.count(|p| matches!(p, Progress::LayerPushed { .. })),
        3
    );
    assert_eq!(pushed.media_type, manifest::DOCKER_MANIFEST);
    // The generated gzip is kept, so the next push reuses it.
    for c in &img.chains {
        let (blob, mt) = src.storage.layer_blob(c).unwrap().expect("blob recorded");
        assert!(src.storage.content().exists(&blob));
        assert_eq!(mt, manifest::DOCKER_LAYER_GZIP);
    }

    let dest = TestStorage::new();
    let events = Events::default();
    let pulled = Registry::new(RegistryConfig::default())
        .pull(
            dest.storage.clone(),
            &reference,
            &amd64(),
            None,
            &events.sink(),
        )
        .await
        .unwrap();
    assert_eq!(Digest::of(&pulled.config), img.id(), "same image id");
    assert_eq!(pulled.config, img.config);
    assert_eq!(pulled.manifest_digest, pushed.manifest_digest);
    assert_eq!(pulled.media_type, manifest::DOCKER_MANIFEST);
    assert_same_layers(&dest, &img, &pulled);
    dest.assert_no_leftovers();
    assert_eq!(
        events.count(|p| matches!(p, Progress::LayerPullComplete { .. })),
        3
    );
    assert!(events.all().contains(&Progress::Digest {
        digest: pushed.manifest_digest.clone()
    }));
    // Compressed blobs are kept and recorded for push and save.
    for (l, d) in pulled.layers.iter().zip(&pulled.manifest.layers) {
        let (blob, _) = dest.storage.layer_blob(&l.chain_id).unwrap().unwrap();
        assert_eq!(blob, d.digest);
        assert!(dest.storage.content().exists(&blob));
    }

    // Pulling again finds everything present.
    let events = Events::default();
    let again = r
        .pull(
            dest.storage.clone(),
            &reference,
            &amd64(),
            None,
            &events.sink(),
        )
        .await
        .unwrap();
    assert_eq!(again.layers, pulled.layers);
    assert_eq!(
        events.count(|p| matches!(p, Progress::LayerAlreadyExists { .. })),
        3
    );
    let resolved = r.resolve(&reference, &amd64(), None).await.unwrap();
    assert_eq!(resolved.digest, pushed.manifest_digest);
    assert_eq!(resolved.config_digest, img.id());
    let mut tags = r.list_tags(&reference, None).await.unwrap();
    tags.sort();
    assert_eq!(tags, vec!["v1"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn transfers_beyond_the_concurrency_limit_are_reported_as_queued() {
    if !require_root("transfers_beyond_the_concurrency_limit_are_reported_as_queued") {
        return;
    }
    let reg = TestRegistry::start();
    let src = TestStorage::new();
    let img = make_image(&src.storage, small_layers(), "amd64", Stored::Gzip);
    let one_at_a_time = Registry::new(RegistryConfig {
        max_concurrent_downloads: 1,
        max_concurrent_uploads: 1,
        ..RegistryConfig::default()
    });
    let reference = reg.reference("app/queued");
    let queued = |events: &Events| -> Vec<String> {
        events
            .all()
            .into_iter()
            .filter_map(|p| match p {
                Progress::LayerQueued { id } => Some(id),
                _ => None,
            })
            .collect()
    };
    let pushing = Events::default();
    one_at_a_time
        .push(
            src.storage.clone(),
            &reference,
            &img.config,
            &img.chains,
            None,
            &pushing.sink(),
        )
        .await
        .unwrap();
    // Push ids are diff_ids; the uploads race for the one slot, the losers wait.
    let q = queued(&pushing);
    assert!(!q.is_empty() && q.len() <= 2, "{q:?}");
    assert!(q.iter().all(|id| img
        .diff_ids
        .iter()
        .any(|d| d.hex().starts_with(id.as_str()))));

    let dest = TestStorage::new();
    let pulling = Events::default();
    let pulled = one_at_a_time
        .pull(
            dest.storage.clone(),
            &reference,
            &amd64(),
            None,
            &pulling.sink(),
        )
        .await
        .unwrap();
    // Downloads start in layer order: the second and third layers wait, once each.
    let ids: Vec<String> = pulled.manifest.layers[1..]
        .iter()
        .map(|l| l.digest.hex()[..12].to_string())
        .collect();
    assert_eq!(queued(&pulling), ids);
    let all = pulling.all();
    let first_queued = all
        .iter()
        .position(|p| matches!(p, Progress::LayerQueued { .. }))
        .unwrap();
    assert!(
        all[..first_queued]
            .iter()
            .filter(|p| matches!(p, Progress::LayerWaiting { .. }))
            .count()
            == 3,
        "every layer is announced before any waits: {all:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn second_push_reports_layer_already_exists_and_uploads_nothing() {
    if !require_root("second_push_reports_layer_already_exists_and_uploads_nothing") {
        return;
    }
    let reg = TestRegistry::start();
    let src = TestStorage::new();
    let img = make_image(&src.storage, small_layers(), "amd64", Stored::Gzip);
    let r = registry();
    let reference = reg.reference("app/twice");
    let first = r
        .push(
            src.storage.clone(),
            &reference,
            &img.config,
            &img.chains,
            None,
            &quiet,
        )
        .await
        .unwrap();
    let uploads_before = reg.count_requests("PUT", "/v2/app/twice/blobs/uploads/");
    let events = Events::default();
    let second = r
        .push(
            src.storage.clone(),
            &reference,
            &img.config,
            &img.chains,
            None,
            &events.sink(),
        )
        .await
        .unwrap();
    assert_eq!(first.manifest_digest, second.manifest_digest);
    assert_eq!(
        events.count(|p| matches!(p, Progress::LayerAlreadyExists { .. })),
        3
    );
    assert_eq!(
        events.count(|p| matches!(p, Progress::LayerPushed { .. })),
        0
    );
    assert_eq!(
        reg.count_requests("PUT", "/v2/app/twice/blobs/uploads/"),
        uploads_before
    );
    // Progress ids are short diff_ids, as Docker shows them on push.
    let ids: Vec<String> = img
        .diff_ids
        .iter()
        .map(|d| d.hex()[..12].to_string())
        .collect();
    assert!(events.all().iter().all(|p| match p {
        Progress::LayerAlreadyExists { id } | Progress::LayerPreparing { id } => ids.contains(id),
        _ => true,
    }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn push_to_another_repository_mounts_blobs_instead_of_uploading() {
    if !require_root("push_to_another_repository_mounts_blobs_instead_of_uploading") {
        return;
    }
    let reg = TestRegistry::start();
    let src = TestStorage::new();
    let img = make_image(&src.storage, small_layers(), "amd64", Stored::Gzip);
    let r = registry();
    r.push(
        src.storage.clone(),
        &reg.reference("team/a"),
        &img.config,
        &img.chains,
        None,
        &quiet,
    )
    .await
    .unwrap();
    let events = Events::default();
    r.push(
        src.storage.clone(),
        &reg.reference("team/b"),
        &img.config,
        &img.chains,
        None,
        &events.sink(),
    )
    .await
    .unwrap();
    let mounted: Vec<String> = events
        .all()
        .into_iter()
        .filter_map(|p| match p {
            Progress::LayerMounted { from, .. } => Some(from),
            _ => None,
        })
        .collect();
    assert_eq!(mounted, vec!["team/a"; 3]);
    assert_eq!(
        reg.count_requests("PUT", "/v2/team/b/blobs/uploads/"),
        1,
        "only the config is uploaded"
    );
    // And the mounted repository pulls.
    let dest = TestStorage::new();
    let pulled = r
        .pull(
            dest.storage.clone(),
            &reg.reference("team/b"),
            &amd64(),
            None,
            &quiet,
        )
        .await
        .unwrap();
    assert_same_layers(&dest, &img, &pulled);
    // A mount the registry refuses (the blob left both source repositories) falls back
    // to an upload.
    let resolved = r
        .resolve(&reg.reference("team/a"), &amd64(), None)
        .await
        .unwrap();
    for l in &resolved.manifest.layers {
        for repo in ["team/a", "team/b"] {
            let status = reg.raw_request("DELETE", &format!("/v2/{repo}/blobs/{}", l.digest));
            assert_eq!(status, 202, "deleting {} from {repo}", l.digest);
        }
    }
    let events = Events::default();
    r.push(
        src.storage.clone(),
        &reg.reference("team/c"),
        &img.config,
        &img.chains,
        None,
        &events.sink(),
    )
    .await
    .unwrap();
    assert_eq!(
        events.count(|p| matches!(p, Progress::LayerMounted { .. })),
        0
    );
    assert_eq!(
        events.count(|p| matches!(p, Progress::LayerPushed { .. })),
        3
    );
    let dest = TestStorage::new();
    let pulled = r
        .pull(
            dest.storage.clone(),
            &reg.reference("team/c"),
            &amd64(),
            None,
            &quiet,
        )
        .await
        .unwrap();
    assert_same_layers(&dest, &img, &pulled);
}

/// Pushes `img` under `tag` and returns its manifest descriptor with `platform`.
async fn push_platform_image(
    r: &Registry,
    reg: &TestRegistry,
    src: &TestStorage,
    img: &LocalImage,
    tag: &str,
    platform: &Platform,
) -> Descriptor {
    let pushed = r
        .push(
            src.storage.clone(),
            &reg.reference(&format!("multi:{tag}")),
            &img.config,
            &img.chains,
            None,
            &quiet,
        )
        .await
        .unwrap();
    let mut d = Descriptor::new(&pushed.media_type, pushed.size, pushed.manifest_digest);
    d.platform = Some(PlatformSpec::from(platform));
    d
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pull_of_a_manifest_list_selects_the_requested_platform() {
    if !require_root("pull_of_a_manifest_list_selects_the_requested_platform") {
        return;
    }
    let reg = TestRegistry::start();
    let src = TestStorage::new();
    let r = registry();
    let amd = make_image(
        &src.storage,
        vec![layer_tar(&[("arch", b"amd64")])],
        "amd64",
        Stored::Gzip,
    );
    let arm = make_image(
        &src.storage,
        vec![layer_tar(&[("arch", b"arm64")])],
        "arm64",
        Stored::Gzip,
    );
    let arm64: Platform = "linux/arm64".parse().unwrap();
    let d_arm = push_platform_image(&r, &reg, &src, &arm, "arm64", &arm64).await;
    let d_amd = push_platform_image(&r, &reg, &src, &amd, "amd64", &amd64()).await;
    for media_type in [manifest::DOCKER_MANIFEST_LIST, manifest::OCI_INDEX] {
        let index = ImageIndex {
            schema_version: 2,
            media_type: Some(media_type.to_string()),
            manifests: vec![d_arm.clone(), d_amd.clone()],
            annotations: None,
        };
        let bytes = index.to_bytes();
        let list_ref = reg.reference("multi:latest");
        let index_digest = r
            .push_manifest(&list_ref, media_type, &bytes, None)
            .await
            .unwrap();
        assert_eq!(index_digest, Digest::of(&bytes));

        let dest = TestStorage::new();
        let pulled = r
            .pull(dest.storage.clone(), &list_ref, &amd64(), None, &quiet)
            .await
            .unwrap();
        assert_eq!(Digest::of(&pulled.config), amd.id(), "{media_type}");
        assert_eq!(
            pulled.manifest_digest, index_digest,
            "RepoDigest is the index's"
        );
        assert_eq!(pulled.platform_manifest_digest, d_amd.digest);
        assert_eq!(pulled.media_type, media_type);
        assert_same_layers(&dest, &amd, &pulled);

        let resolved = r.resolve(&list_ref, &arm64, None).await.unwrap();
        assert_eq!(resolved.config_digest, arm.id());
        assert_eq!(resolved.manifest_digest, d_arm.digest);

        let err = r
            .pull(
                dest.storage.clone(),
                &list_ref,
                &"linux/s390x".parse().unwrap(),
                None,
                &quiet,
            )
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "no matching manifest for linux/s390x in the manifest list entries"
        );
        assert_eq!(err.kind(), ErrorKind::NotFound);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn oci_images_with_zstd_and_uncompressed_layers_round_trip() {
    if !require_root("oci_images_with_zstd_and_uncompressed_layers_round_trip") {
        return;
    }
    let reg = TestRegistry::start();
    let r = registry();
    for stored in [Stored::Zstd, Stored::Plain] {
        let src = TestStorage::new();
        let img = make_image(&src.storage, small_layers(), "amd64", stored);
        let reference = reg.reference(&format!("oci/{stored:?}").to_lowercase());
        let pushed = r
            .push(
                src.storage.clone(),
                &reference,
                &img.config,
                &img.chains,
                None,
                &quiet,
            )
            .await
            .unwrap();
        assert_eq!(pushed.media_type, manifest::OCI_MANIFEST, "{stored:?}");
        let dest = TestStorage::new();
        let pulled = r
            .pull(dest.storage.clone(), &reference, &amd64(), None, &quiet)
            .await
            .unwrap();
        assert_eq!(pulled.media_type, manifest::OCI_MANIFEST);
        assert_eq!(pulled.manifest.config.media_type, manifest::OCI_CONFIG);
        let want = if stored == Stored::Zstd {
            manifest::OCI_LAYER_ZSTD
        } else {
            manifest::OCI_LAYER
        };
        assert!(pulled.manifest.layers.iter().all(|l| l.media_type == want));
        assert_eq!(Digest::of(&pulled.config), img.id());
        assert_same_layers(&dest, &img, &pulled);
        dest.assert_no_leftovers();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_corrupt_blob_fails_the_pull_cleanly_and_leaves_nothing() {
    if !require_root("a_corrupt_blob_fails_the_pull_cleanly_and_leaves_nothing") {
        return;
    }
    let reg = TestRegistry::start();
    let src = TestStorage::new();
    let r = registry();
    for stored in [Stored::Gzip, Stored::Plain] {
        let img = make_image(&src.storage, small_layers(), "amd64", stored);
        let reference = reg.reference(&format!("corrupt/{stored:?}").to_lowercase());
        let pushed = r
            .push(
                src.storage.clone(),
                &reference,
                &img.config,
                &img.chains,
                None,
                &quiet,
            )
            .await
            .unwrap();
        let resolved = r.resolve(&reference, &amd64(), None).await.unwrap();
        assert_eq!(resolved.digest, pushed.manifest_digest);
        // Corrupt the middle layer's blob in the registry's storage (same length).
        let bad = &resolved.manifest.layers[1];
        let path = reg.blob_path(&bad.digest);
        let mut bytes = std::fs::read(&path).unwrap();
        let mid = bytes.len() / 2;
        for b in &mut bytes[mid..mid + 64] {
            *b ^= 0x5a;
        }
        std::fs::write(&path, &bytes).unwrap();

        let dest = TestStorage::new();
        let err = r
            .pull(dest.storage.clone(), &reference, &amd64(), None, &quiet)
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "filesystem layer verification failed for digest {}",
                bad.digest
            ),
            "{stored:?}"
        );
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
        assert!(
            !dest.storage.content().exists(&bad.digest),
            "no corrupt blob kept"
        );
        assert!(
            dest.storage.layer(&img.chains[1]).is_none(),
            "no layer from it"
        );
        assert!(dest.storage.layer(&img.chains[2]).is_none());
        dest.assert_no_leftovers();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_interrupted_pull_leaves_no_partial_layer_and_the_next_pull_completes() {
    if !require_root("an_interrupted_pull_leaves_no_partial_layer_and_the_next_pull_completes") {
        return;
    }
    let reg = TestRegistry::start();
    let src = TestStorage::new();
    let big = vec![
        layer_tar(&[("a", &rand_bytes(3 << 20))]),
        layer_tar(&[("b", &rand_bytes(3 << 20))]),
    ];
    let img = make_image(&src.storage, big, "amd64", Stored::Gzip);
    let r = registry();
    r.push(
        src.storage.clone(),
        &reg.reference("cut/app"),
        &img.config,
        &img.chains,
        None,
        &quiet,
    )
    .await
    .unwrap();
    // The same registry through a proxy that drops every connection after 2 MiB.
    let proxy = TcpProxy::cutting(reg.port, 2 << 20);
    let via_proxy = berth_core::reference::Reference::parse_with_default_tag(&format!(
        "127.0.0.1:{}/cut/app",
        proxy.port
    ))
    .unwrap();
    let dest = TestStorage::new();
    let err = r
        .pull(dest.storage.clone(), &via_proxy, &amd64(), None, &quiet)
        .await
        .unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::Unavailable | ErrorKind::Internal),
        "{err}"
    );
    assert!(
        dest.storage.layers().is_empty(),
        "no layer visible: {:?}",
        dest.storage.layers()
    );
    dest.assert_no_leftovers();
    let pulled = r
        .pull(
            dest.storage.clone(),
            &reg.reference("cut/app"),
            &amd64(),
            None,
            &quiet,
        )
        .await
        .unwrap();
    assert_same_layers(&dest, &img, &pulled);

    // A pull dropped half-way (the client went away) leaves nothing either.
    let dest = TestStorage::new();
    let (cut_ref, platform) = (reg.reference("cut/app"), amd64());
    let slow = r.pull(dest.storage.clone(), &cut_ref, &platform, None, &quiet);
    let _ = tokio::time::timeout(std::time::Duration::from_millis(30), slow).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let layers = dest.storage.layers();
    assert!(layers.iter().all(|l| img.chains.contains(&l.chain_id)));
    let pulled = r
        .pull(
            dest.storage.clone(),
            &reg.reference("cut/app"),
            &amd64(),
            None,
            &quiet,
        )
        .await
        .unwrap();
    assert_same_layers(&dest, &img, &pulled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_pulls_of_one_image_download_each_blob_once() {
    if !require_root("concurrent_pulls_of_one_image_download_each_blob_once") {
        return;
    }
    let reg = TestRegistry::start();
    let src = TestStorage::new();
    let layers = vec![
        layer_tar(&[("a", &rand_bytes(4 << 20))]),
        layer_tar(&[("b", &rand_bytes(4 << 20))]),
        layer_tar(&[("c", &rand_bytes(4 << 20))]),
    ];
    let img = make_image(&src.storage, layers, "amd64", Stored::Gzip);
    let r = registry();
    let reference = reg.reference("shared/app");
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
    let resolved = r.resolve(&reference, &amd64(), None).await.unwrap();
    let dest = TestStorage::new();
    let platform = amd64();
    let (a, b) = tokio::join!(
        r.pull(dest.storage.clone(), &reference, &platform, None, &quiet),
        r.pull(dest.storage.clone(), &reference, &platform, None, &quiet),
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.layers, b.layers);
    assert_same_layers(&dest, &img, &a);
    for l in &resolved.manifest.layers {
        assert_eq!(
            reg.count_requests("GET", &format!("/v2/shared/app/blobs/{}", l.digest)),
            1,
            "blob {} downloaded once",
            l.digest
        );
    }
    dest.assert_no_leftovers();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn basic_auth_accepts_the_right_password_and_refuses_others() {
    if !require_root("basic_auth_accepts_the_right_password_and_refuses_others") {
        return;
    }
    let reg = TestRegistry::start_with(
        Auth::Htpasswd {
            user: "alice".into(),
            password: "wonder land".into(),
        },
        None,
    );
    let good = Credentials::basic("alice", "wonder land");
    let bad = Credentials::basic("alice", "nope");
    let r = registry();
    let src = TestStorage::new();
    let img = make_image(&src.storage, small_layers(), "amd64", Stored::Nothing);
    let reference = reg.reference("private/app");
    r.push(
        src.storage.clone(),
        &reference,
        &img.config,
        &img.chains,
        Some(&good),
        &quiet,
    )
    .await
    .unwrap();

    let login = r.login(&reg.host(), &good).await.unwrap();
    assert_eq!(login.status, "Login Succeeded");
    let err = r
        .login(&format!("http://{}", reg.host()), &bad)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "login attempt to http://{}/v2/ failed with status: 401 Unauthorized",
            reg.host()
        )
    );
    assert_eq!(err.kind(), ErrorKind::Unauthorized);

    let dest = TestStorage::new();
    let err = r
        .pull(
            dest.storage.clone(),
            &reference,
            &amd64(),
            Some(&bad),
            &quiet,
        )
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "unauthorized: authentication required");
    assert_eq!(err.kind(), ErrorKind::Unauthorized);
    let err = r
        .pull(dest.storage.clone(), &reference, &amd64(), None, &quiet)
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "no basic auth credentials");
    let err = r
        .push(
            src.storage.clone(),
            &reference,
            &img.config,
            &img.chains,
            Some(&bad),
            &quiet,
        )
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "unauthorized: authentication required");

    let pulled = r
        .pull(
            dest.storage.clone(),
            &reference,
            &amd64(),
            Some(&good),
            &quiet,
        )
        .await
        .unwrap();
    assert_same_layers(&dest, &img, &pulled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn token_auth_fetches_scoped_tokens_caches_them_and_reports_bad_passwords() {
    if !require_root("token_auth_fetches_scoped_tokens_caches_them_and_reports_bad_passwords") {
        return;
    }
    let tokens = TokenServer::start("bob", "hunter2");
    let reg = TestRegistry::start_with(Auth::Token(tokens.config.clone()), None);
    let good = Credentials::basic("bob", "hunter2");
    let r = registry();
    let src = TestStorage::new();
    let img = make_image(&src.storage, small_layers(), "amd64", Stored::Nothing);
    let reference = reg.reference("bob/app");
    r.push(
        src.storage.clone(),
        &reference,
        &img.config,
        &img.chains,
        Some(&good),
        &quiet,
    )
    .await
    .unwrap();

    // Login asks for offline access and returns the refresh token as identity token.
    let login = r.login(&reg.host(), &good).await.unwrap();
    assert_eq!(login.status, "Login Succeeded");
    assert_eq!(login.identity_token.as_deref(), Some("refresh-bob"));

    let dest = TestStorage::new();
    let pulled = r
        .pull(
            dest.storage.clone(),
            &reference,
            &amd64(),
            Some(&good),
            &quiet,
        )
        .await
        .unwrap();
    assert_same_layers(&dest, &img, &pulled);
    // The pull token is cached: resolving again costs no token request.
    let before = tokens
        .token_requests
        .load(std::sync::atomic::Ordering::SeqCst);
    r.resolve(&reference, &amd64(), Some(&good)).await.unwrap();
    assert_eq!(
        tokens
            .token_requests
            .load(std::sync::atomic::Ordering::SeqCst),
        before
    );

    // An identity token alone works (OAuth2 refresh-token grant).
    let by_token = Credentials {
        identity_token: "refresh-bob".into(),
        ..Credentials::default()
    };
    let resolved = registry()
        .resolve(&reference, &amd64(), Some(&by_token))
        .await
        .unwrap();
    assert_eq!(resolved.config_digest, img.id());

    let bad = Credentials::basic("bob", "wrong");
    let err = registry()
        .pull(
            dest.storage.clone(),
            &reference,
            &amd64(),
            Some(&bad),
            &quiet,
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .ends_with("unauthorized: incorrect username or password"),
        "{err}"
    );
    assert_eq!(err.kind(), ErrorKind::Unauthorized);
    let err = registry().login(&reg.host(), &bad).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "Get \"http://{}/v2/\": unauthorized: incorrect username or password",
            reg.host()
        )
    );
    assert_eq!(err.kind(), ErrorKind::Unauthorized);

    // Anonymous: the token grants nothing, and Docker words it as access denied.
    let err = registry()
        .pull(dest.storage.clone(), &reference, &amd64(), None, &quiet)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("pull access denied for {}/bob/app, repository does not exist or may require 'docker login': unauthorized: authentication required", reg.host())
    );
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn missing_tags_and_repositories_are_manifest_unknown() {
    if !require_root("missing_tags_and_repositories_are_manifest_unknown") {
        return;
    }
    let reg = TestRegistry::start();
    let r = registry();
    let dest = TestStorage::new();
    let err = r
        .pull(
            dest.storage.clone(),
            &reg.reference("nothing/here:nope"),
            &amd64(),
            None,
            &quiet,
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "manifest for {}/nothing/here:nope not found: manifest unknown: manifest unknown",
            reg.host()
        )
    );
    assert_eq!(err.kind(), ErrorKind::NotFound);
    let err = r
        .resolve(&reg.reference("nothing/here:nope"), &amd64(), None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("manifest unknown"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_registries_fail_with_gos_dial_error() {
    let port = free_port();
    let reference =
        berth_core::reference::Reference::parse_with_default_tag(&format!("127.0.0.1:{port}/x"))
            .unwrap();
    let dir = temp_dir("unreachable-");
    let storage = Arc::new(
        berth_storage::Storage::open(dir.path().join("root"), berth_storage::DriverChoice::Vfs)
            .unwrap(),
    );
    let err = registry()
        .pull(storage, &reference, &amd64(), None, &quiet)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("Get \"http://127.0.0.1:{port}/v2/\": dial tcp 127.0.0.1:{port}: connect: connection refused")
    );
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    let err = registry()
        .login(&format!("127.0.0.1:{port}"), &Credentials::basic("a", "b"))
        .await
        .unwrap_err();
    assert!(
        err.to_string().ends_with("connect: connection refused"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mirrors_are_tried_first_and_skipped_when_they_fail() {
    if !require_root("mirrors_are_tried_first_and_skipped_when_they_fail") {
        return;
    }
    let origin = TestRegistry::start();
    let mirror = TestRegistry::start();
    let src = TestStorage::new();
    let img = make_image(&src.storage, small_layers(), "amd64", Stored::Gzip);
    let r = registry();
    // The mirror has the image under the same path; the origin has it too.
    for reg in [&origin, &mirror] {
        r.push(
            src.storage.clone(),
            &reg.reference("lib/app"),
            &img.config,
            &img.chains,
            None,
            &quiet,
        )
        .await
        .unwrap();
    }
    let dead = free_port();
    let mut per = std::collections::BTreeMap::new();
    per.insert(
        origin.host(),
        vec![
            format!("http://127.0.0.1:{dead}"),
            format!("http://{}", mirror.host()),
        ],
    );
    let r = Registry::new(RegistryConfig {
        per_registry_mirrors: per,
        ..RegistryConfig::default()
    });
    let origin_manifest_gets = origin.count_requests("GET", "/v2/lib/app/manifests/");
    let dest = TestStorage::new();
    let pulled = r
        .pull(
            dest.storage.clone(),
            &origin.reference("lib/app"),
            &amd64(),
            None,
            &quiet,
        )
        .await
        .unwrap();
    assert_same_layers(&dest, &img, &pulled);
    assert_eq!(
        origin.count_requests("GET", "/v2/lib/app/manifests/"),
        origin_manifest_gets
    );
    assert!(mirror.count_requests("GET", "/v2/lib/app/blobs/") >= 4);
    // A tag the mirror lacks comes from the origin.
    r.push(
        src.storage.clone(),
        &origin.reference("lib/only-origin"),
        &img.config,
        &img.chains,
        None,
        &quiet,
    )
    .await
    .unwrap();
    let dest = TestStorage::new();
    r.pull(
        dest.storage.clone(),
        &origin.reference("lib/only-origin"),
        &amd64(),
        None,
        &quiet,
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_speaks_docker_hubs_v1_api() {
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    let server = HttpServer::start(Arc::new(move |req: &Request| {
        seen2
            .lock()
            .unwrap()
            .push((req.method.clone(), req.path.clone()));
        if !req.path.starts_with("/v1/search") {
            return (404, vec![], b"{}".to_vec());
        }
        let body = serde_json::json!({
            "num_results": 2,
            "query": req.query("q"),
            "results": [
                {"name": "busybox", "description": "Busybox base image.", "star_count": 3200, "is_official": true, "is_automated": false},
                {"name": "someone/busybox", "description": "", "star_count": 4, "is_official": false, "is_automated": true},
            ],
        });
        (
            200,
            vec![("Content-Type".into(), "application/json".into())],
            body.to_string().into_bytes(),
        )
    }));
    let r = registry();
    let results = r.search(&server.url(), "busy box", 10, None).await.unwrap();
    assert_eq!(results.len(), 2);
    assert_eq!(results[0].name, "busybox");
    assert!(results[0].is_official && !results[0].is_automated);
    assert_eq!(results[0].star_count, 3200);
    assert!(results[1].is_automated);
    let (method, path) = seen.lock().unwrap()[0].clone();
    assert_eq!(method, "GET");
    assert_eq!(path, "/v1/search?q=busy+box&n=10");
    let one = r.search(&server.url(), "busy", 1, None).await.unwrap();
    assert_eq!(
        one.len(),
        1,
        "the limit holds even when the server sends more"
    );
    // A term naming a registry searches that registry (HTTP allowed on loopback).
    let port = server.port;
    let via_term = r
        .search("", &format!("127.0.0.1:{port}/busy"), 0, None)
        .await
        .unwrap();
    assert_eq!(via_term.len(), 2);
    assert!(seen
        .lock()
        .unwrap()
        .iter()
        .any(|(_, p)| p == "/v1/search?q=busy&n=25"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn certs_d_ca_and_client_certificates_are_used_for_tls_registries() {
    if !require_root("certs_d_ca_and_client_certificates_are_used_for_tls_registries") {
        return;
    }
    let pki = TestPki::new();
    let reg = TestRegistry::start_with(
        Auth::None,
        Some(Tls {
            cert_pem: pki.server_cert_pem.clone(),
            key_pem: pki.server_key_pem.clone(),
            client_ca_pem: Some(pki.ca_pem.clone()),
        }),
    );
    let certs = temp_dir("certs-d-");
    // Loopback held to the rules of any registry, so the CA really is checked.
    let secure = |dir: &std::path::Path| {
        Registry::new(RegistryConfig {
            certs_dir: dir.to_path_buf(),
            insecure_loopback: false,
            ..RegistryConfig::default()
        })
    };
    let src = TestStorage::new();
    let img = make_image(&src.storage, small_layers(), "amd64", Stored::Gzip);
    let reference = reg.reference("tls/app");

    // No CA: the certificate is refused, as Go words it.
    let err = secure(certs.path())
        .push(
            src.storage.clone(),
            &reference,
            &img.config,
            &img.chains,
            None,
            &quiet,
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("Get \"https://{}/v2/\": tls: failed to verify certificate: x509: certificate signed by unknown authority", reg.host())
    );

    // CA but no client certificate: the registry refuses the handshake.
    write_certs_d(certs.path(), &reg.host(), &[("ca.crt", &pki.ca_pem)]);
    let err = secure(certs.path())
        .push(
            src.storage.clone(),
            &reference,
            &img.config,
            &img.chains,
            None,
            &quiet,
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");

    write_certs_d(
        certs.path(),
        &reg.host(),
        &[
            ("client.cert", &pki.client_cert_pem),
            ("client.key", &pki.client_key_pem),
        ],
    );
    let r = secure(certs.path());
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
    let dest = TestStorage::new();
    let pulled = r
        .pull(dest.storage.clone(), &reference, &amd64(), None, &quiet)
        .await
        .unwrap();
    assert_same_layers(&dest, &img, &pulled);

    // As in Docker, loopback is insecure by default: any certificate is accepted, but
    // the client certificate from certs.d is still presented.
    let only_client = temp_dir("certs-d-client-");
    write_certs_d(
        only_client.path(),
        &reg.host(),
        &[
            ("client.cert", &pki.client_cert_pem),
            ("client.key", &pki.client_key_pem),
        ],
    );
    let r = Registry::new(RegistryConfig {
        certs_dir: only_client.path().to_path_buf(),
        ..RegistryConfig::default()
    });
    r.resolve(&reference, &amd64(), None).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_to_a_plain_http_registry_says_so_as_docker_does() {
    if !require_root("https_to_a_plain_http_registry_says_so_as_docker_does") {
        return;
    }
    let reg = TestRegistry::start();
    let r = Registry::new(RegistryConfig {
        insecure_loopback: false,
        ..RegistryConfig::default()
    });
    let err = r
        .resolve(&reg.reference("x"), &amd64(), None)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "Get \"https://{}/v2/\": http: server gave HTTP response to HTTPS client",
            reg.host()
        )
    );
    // Listed as insecure, the same registry works over HTTP after HTTPS fails.
    let r = Registry::new(RegistryConfig {
        insecure_loopback: false,
        insecure_registries: vec![reg.host()],
        ..RegistryConfig::default()
    });
    let err = r
        .resolve(&reg.reference("x"), &amd64(), None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("manifest unknown"), "{err}");
}

#[test]
fn errors_convert_into_core_errors_with_their_kind() {
    let e = RegistryError::NoBasicCredentials;
    assert_eq!(e.kind(), ErrorKind::Unauthorized);
    let core: berth_core::Error = e.into();
    assert_eq!(core.message(), "no basic auth credentials");
}
