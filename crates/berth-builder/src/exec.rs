//! The executor: runs a [`BuildPlan`] through a [`BuildBackend`], stage by stage, with
//! Docker's semantics for every instruction, its cache, its history texts and its
//! classic-builder output.
//!
//! Each needed stage is a future; all run at once and a stage waits only for the stages
//! it uses (`FROM <stage>`, `COPY --from`), so independent stages build in parallel while
//! the [`Mux`] prints their output in Dockerfile order. A step is reused from the cache
//! when its parent image and its cache key (instruction text, resulting config, and for
//! `COPY`/`ADD` the sources' content hashes) match an earlier build.
//!
//! Every working container made is removed whatever happens; cancellation (the client
//! went away) is observed between steps and inside `RUN`, never by dropping this future.

use crate::backend::{BuildBackend, BuiltImage, OutputStream, RunRequest, WorkingContainer};
use crate::context::{BuildContext, Source};
use crate::copy::{self, CopyPlan, SourceItem};
use crate::error::{BuildError, Result};
use crate::fetch;
use crate::gofmt;
use crate::hash;
use crate::instructions::{
    self, CommandForm, CopyArgs, Dockerfile, HealthcheckArgs, Instruction, Step,
};
use crate::output::{BuildEvent, EventSender, Mux};
use crate::parser::Heredoc;
use crate::plan::{self, BuildOptions, BuildPlan, PlannedStage, DEFAULT_PATH, PROXY_ARGS};
use crate::shell::Lexer;
use berth_core::image::{Empty, History, ImageConfig, ImageHealthcheck, RootFs, RunConfig};
use sha2::{Digest as _, Sha256};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// The outcome of a stage: `None` while it runs, then its image (`None` inside for a
/// stage that made none, e.g. a bare `FROM scratch`), or `Err(())` when it failed.
type Slot = Option<std::result::Result<Option<BuiltImage>, ()>>;

/// The first 12 hex digits of an image id.
pub fn short_id(id: &str) -> &str {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    &hex[..hex.len().min(12)]
}

fn random_id() -> String {
    let bytes: [u8; 32] = rand::random();
    hex::encode(bytes)
}

/// The cache key of a step: what it does and the image config it results in.
pub fn cache_key(created_by: &str, config: &RunConfig, platform: &str) -> String {
    let doc = serde_json::json!({
        "v": 1,
        "created_by": created_by,
        "config": config,
        "platform": platform,
    });
    hex::encode(Sha256::digest(doc.to_string().as_bytes()))
}

/// Runs a whole build; returns the id of the image it made (already tagged).
pub async fn build<B: BuildBackend>(
    backend: &B,
    ctx: &BuildContext,
    df: &Dockerfile,
    plan: &BuildPlan,
    opts: &BuildOptions,
    events: EventSender,
    cancel: CancellationToken,
) -> Result<String> {
    let order: Vec<usize> = plan.stages.iter().map(|s| s.stage.index).collect();
    let mux = Mux::new(order, events);
    for w in &df.warnings {
        mux.global(BuildEvent::Stream(format!("{w}\n")));
    }
    let slots: Vec<watch::Sender<Slot>> =
        df.stages.iter().map(|_| watch::channel(None).0).collect();
    let stop = cancel.child_token();
    let (mux_ref, slots_ref, stop_ref) = (&mux, &slots[..], &stop);
    let runners = plan.stages.iter().map(|ps| {
        let shared = Shared {
            backend,
            ctx,
            df,
            plan,
            opts,
            mux: mux_ref,
            slots: slots_ref,
            cancel: stop_ref,
        };
        async move {
            let index = ps.stage.index;
            let result = StageRun::new(shared, index).run(ps).await;
            match &result {
                Ok(img) => slots_ref[index].send_replace(Some(Ok(img.clone()))),
                Err(_) => {
                    stop_ref.cancel();
                    slots_ref[index].send_replace(Some(Err(())))
                }
            };
            if result.is_ok() {
                mux_ref.finish(index);
            }
            (index, result)
        }
    });
    let results = futures_util::future::join_all(runners).await;
    let mut target = None;
    let mut first_err: Option<BuildError> = None;
    for (index, r) in results {
        match r {
            Ok(img) if index == plan.target => target = img,
            Ok(_) => {}
            Err(BuildError::Cancelled) => {
                first_err.get_or_insert(BuildError::Cancelled);
            }
            Err(e) => {
                if first_err
                    .as_ref()
                    .is_none_or(|f| matches!(f, BuildError::Cancelled))
                {
                    first_err = Some(e);
                }
            }
        }
    }
    if let Some(e) = first_err {
        mux.flush();
        return Err(e);
    }
    let img = target
        .ok_or_else(|| BuildError::invalid("No image was generated. Is your Dockerfile empty?"))?;
    let unused = plan.unused_args(opts);
    if !unused.is_empty() {
        mux.global(BuildEvent::Stream(format!(
            "[Warning] One or more build-args [{}] were not consumed\n",
            unused.join(" ")
        )));
    }
    mux.global(BuildEvent::ImageId(img.id.clone()));
    mux.global(BuildEvent::Stream(format!(
        "Successfully built {}\n",
        short_id(&img.id)
    )));
    for r in &plan.tags {
        backend.tag(&img.id, &r.to_string())?;
        mux.global(BuildEvent::Stream(format!(
            "Successfully tagged {}\n",
            r.familiar()
        )));
    }
    Ok(img.id)
}

/// What every stage shares.
struct Shared<'a, B> {
    backend: &'a B,
    ctx: &'a BuildContext,
    df: &'a Dockerfile,
    plan: &'a BuildPlan,
    opts: &'a BuildOptions,
    mux: &'a Mux,
    slots: &'a [watch::Sender<Slot>],
    cancel: &'a CancellationToken,
}

/// One stage being built.
struct StageRun<'a, B> {
    s: Shared<'a, B>,
    index: usize,
    lexer: Lexer,
    image: Option<BuiltImage>,
    config: ImageConfig,
    /// ARGs declared in this stage that have a value, in order.
    args: Vec<(String, String)>,
    cmd_set: bool,
    author: String,
    platform: String,
}

/// What a step that makes a layer does in its working container.
enum LayerWork {
    Run(RunRequest, String),
    Workdir(String),
    Copy(CopyPlan),
}

impl<'a, B: BuildBackend> StageRun<'a, B> {
    fn new(s: Shared<'a, B>, index: usize) -> Self {
        let (os, arch) = plan::host_platform();
        Self {
            lexer: Lexer::new(s.df.escape),
            s,
            index,
            image: None,
            config: ImageConfig::default(),
            args: Vec::new(),
            cmd_set: false,
            author: String::new(),
            platform: format!("{os}/{arch}"),
        }
    }

    fn say(&self, text: impl Into<String>) {
        self.s.mux.emit(self.index, BuildEvent::Stream(text.into()));
    }

    fn parent_id(&self) -> String {
        self.image
            .as_ref()
            .map(|i| i.id.clone())
            .unwrap_or_default()
    }

    fn check_cancel(&self) -> Result<()> {
        if self.s.cancel.is_cancelled() {
            Err(BuildError::Cancelled)
        } else {
            Ok(())
        }
    }

    fn env(&self) -> Vec<String> {
        self.config.config.env.clone().unwrap_or_default()
    }

    fn env_has(&self, key: &str) -> bool {
        self.env()
            .iter()
            .any(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) == key)
    }

    /// Build arguments visible in this stage, not shadowed by ENV: the declared ones with
    /// a value, then proxy arguments given without a declaration.
    fn visible_args(&self) -> Vec<(String, String, bool)> {
        let mut out: Vec<(String, String, bool)> = self
            .args
            .iter()
            .filter(|(k, _)| !self.env_has(k))
            .map(|(k, v)| (k.clone(), v.clone(), true))
            .collect();
        for p in PROXY_ARGS {
            if let Some(v) = self.s.opts.arg(p) {
                if !self.args.iter().any(|(k, _)| k == p) && !self.env_has(p) {
                    out.push((p.to_string(), v.to_string(), false));
                }
            }
        }
        out
    }

    /// The environment words are substituted with (ENV wins over ARG).
    fn expand_env(&self) -> Vec<String> {
        let mut env: Vec<String> = self
            .visible_args()
            .into_iter()
            .map(|(k, v, _)| format!("{k}={v}"))
            .collect();
        env.extend(self.env());
        env
    }

    fn expand(&self, word: &str) -> Result<String> {
        self.lexer
            .process_word(word, &self.expand_env())
            .map_err(|e| BuildError::invalid(e.to_string()))
    }

    fn shell(&self) -> Vec<String> {
        self.config
            .config
            .shell
            .clone()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()])
    }

    async fn run(mut self, ps: &PlannedStage) -> Result<Option<BuiltImage>> {
        let total = self.s.plan.total_steps;
        let mut n = ps.first_step;
        self.say(format!("Step {n}/{total} : {}", ps.stage.from.original));
        self.say("\n");
        self.from(&ps.stage.from).await?;
        for step in &ps.stage.steps {
            n += 1;
            self.check_cancel()?;
            self.say(format!("Step {n}/{total} : {}", step.original));
            self.say("\n");
            self.dispatch(step).await?;
            self.say(format!(" ---> {}\n", short_id(&self.parent_id())));
        }
        Ok(self.image)
    }

    /// Waits for another stage's image.
    async fn stage_image(&self, index: usize) -> Result<Option<BuiltImage>> {
        if !self.s.plan.stages.iter().any(|p| p.stage.index == index) {
            return Err(BuildError::invalid(format!(
                "stage {index} is used with a name only known while building; name it with a global ARG or literally"
            )));
        }
        let mut rx = self.s.slots[index].subscribe();
        let done = tokio::select! {
            r = rx.wait_for(|v| v.is_some()) => r.map(|v| v.clone()).ok().flatten(),
            _ = self.s.cancel.cancelled() => return Err(BuildError::Cancelled),
        };
        match done {
            Some(Ok(img)) => Ok(img),
            _ => Err(BuildError::Cancelled),
        }
    }

    /// A local image, or pulled when missing (or always with `--pull`).
    async fn base_image(&self, name: &str, platform: &str) -> Result<BuiltImage> {
        let local = self.s.backend.image(name)?;
        match (local, self.s.opts.pull) {
            (Some(img), false) => Ok(img),
            (local, _) => match self.s.backend.pull(name, platform).await {
                Ok(img) => Ok(img),
                // Without a registry, `--pull` falls back to what is here.
                Err(BuildError::Backend(e))
                    if e.kind() == berth_core::ErrorKind::NotImplemented && local.is_some() =>
                {
                    Ok(local.unwrap_or_else(|| unreachable!("checked above")))
                }
                Err(e) => Err(e),
            },
        }
    }

    async fn from(&mut self, step: &Step) -> Result<()> {
        let Instruction::From {
            image, platform, ..
        } = &step.instruction
        else {
            return Err(BuildError::NoStage);
        };
        let name = self
            .lexer
            .process_word(image, &self.s.plan.global_env)
            .map_err(|e| BuildError::invalid(e.to_string()))?;
        let platform = match platform {
            Some(p) => self
                .lexer
                .process_word(p, &self.s.plan.global_env)
                .map_err(|e| BuildError::invalid(e.to_string()))?,
            None => self.s.opts.platform.clone(),
        };
        plan::check_platform(&platform)?;
        let stage = plan::stage_ref(&self.s.df.stages, self.index, &name)
            .filter(|_| name.parse::<usize>().is_err());
        let base = if let Some(i) = stage {
            self.stage_image(i).await?
        } else if name.eq_ignore_ascii_case("scratch") {
            None
        } else {
            Some(self.base_image(&name, &platform).await?)
        };
        let (os, arch) = plan::host_platform();
        self.config = match &base {
            Some(b) => b.config.clone(),
            None => ImageConfig {
                architecture: arch,
                os,
                rootfs: RootFs {
                    typ: "layers".into(),
                    diff_ids: Vec::new(),
                },
                ..Default::default()
            },
        };
        self.image = base;
        self.args.clear();
        self.cmd_set = false;
        self.author.clear();
        let env = self.config.config.env.get_or_insert_with(Vec::new);
        if !env.iter().any(|e| e.starts_with("PATH=")) {
            env.push(format!("PATH={DEFAULT_PATH}"));
        }
        let triggers = self.config.config.on_build.take().unwrap_or_default();
        if !triggers.is_empty() {
            self.say(format!(
                "# Executing {} build trigger{}\n",
                triggers.len(),
                if triggers.len() == 1 { "" } else { "s" }
            ));
            for t in triggers {
                let step = instructions::parse_line(&t, self.s.df.escape)?;
                self.check_cancel()?;
                self.dispatch(&step).await?;
            }
        }
        self.say(format!(" ---> {}\n", short_id(&self.parent_id())));
        Ok(())
    }

    /// The image config of a step's result, on top of the current one.
    fn child_config(&self, run: RunConfig, created_by: &str, empty_layer: bool) -> ImageConfig {
        let now = chrono::Utc::now();
        let mut c = self.config.clone();
        c.config = run;
        c.config.image = self.parent_id();
        c.created = Some(now);
        c.author = self.author.clone();
        c.parent = self.parent_id();
        c.container_config = None;
        c.history.push(History {
            created: Some(now),
            author: self.author.clone(),
            created_by: created_by.to_string(),
            comment: String::new(),
            empty_layer,
        });
        c
    }

    fn cache_lookup(&self, key: &str) -> Result<Option<BuiltImage>> {
        if self.s.opts.no_cache {
            return Ok(None);
        }
        self.s.backend.cache_get(&self.parent_id(), key)
    }

    fn use_cached(&mut self, img: BuiltImage) {
        self.say(" ---> Using cache\n");
        self.config = img.config.clone();
        self.image = Some(img);
    }

    fn removing(&self, id: &str) {
        if self.s.opts.remove || self.s.opts.force_remove {
            self.say(format!(
                "Removing intermediate container {}\n",
                short_id(id)
            ));
        }
    }

    /// A step that only changes the config: one new image, no layer.
    async fn metadata_step(&mut self, created_by: String, mut run: RunConfig) -> Result<()> {
        run.image = self.parent_id();
        let key = cache_key(&created_by, &run, &self.platform);
        if let Some(img) = self.cache_lookup(&key)? {
            self.use_cached(img);
            return Ok(());
        }
        // The classic builder commits a container even for metadata; say so as it does.
        let shown = random_id();
        self.say(format!(" ---> Running in {}\n", short_id(&shown)));
        let cfg = self.child_config(run, &created_by, true);
        let img = self.s.backend.store_image(cfg)?;
        self.s.backend.cache_put(&self.parent_id(), &key, &img.id)?;
        self.removing(&shown);
        self.config = img.config.clone();
        self.image = Some(img);
        Ok(())
    }

    /// A step that changes files: a working container, the work, a commit.
    async fn layer_step(&mut self, created_by: String, work: LayerWork) -> Result<()> {
        let mut run = self.config.config.clone();
        run.image = self.parent_id();
        if let LayerWork::Workdir(dir) = &work {
            run.working_dir = dir.clone();
        }
        let key = cache_key(&created_by, &run, &self.platform);
        if let Some(img) = self.cache_lookup(&key)? {
            self.use_cached(img);
            return Ok(());
        }
        let parent = self.image.as_ref().map(|i| i.id.clone());
        let wc = self.s.backend.create_working(parent.as_deref()).await?;
        let shows_container = !matches!(work, LayerWork::Copy(_));
        if shows_container {
            self.say(format!(" ---> Running in {}\n", short_id(&wc.id)));
        }
        let result = self.work_in(&wc, work, run, &created_by).await;
        let removed = self.s.backend.remove_working(&wc).await;
        let img = result?;
        removed?;
        self.s.backend.cache_put(&self.parent_id(), &key, &img.id)?;
        if shows_container {
            self.removing(&wc.id);
        }
        self.config = img.config.clone();
        self.image = Some(img);
        Ok(())
    }

    async fn work_in(
        &self,
        wc: &WorkingContainer,
        work: LayerWork,
        run: RunConfig,
        created_by: &str,
    ) -> Result<BuiltImage> {
        match work {
            LayerWork::Run(req, shown) => {
                let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
                let running = self.s.backend.run(wc, req, tx, self.s.cancel.child_token());
                let forward = async {
                    while let Some((stream, data)) = rx.recv().await {
                        let text = String::from_utf8_lossy(&data);
                        match stream {
                            OutputStream::Stdout => self.say(text.into_owned()),
                            OutputStream::Stderr => self.say(format!("\u{1b}[91m{text}\u{1b}[0m")),
                        }
                    }
                };
                let (code, ()) = tokio::join!(running, forward);
                self.check_cancel()?;
                let code = code?;
                if code != 0 {
                    return Err(BuildError::CommandFailed {
                        command: shown,
                        code,
                    });
                }
            }
            LayerWork::Workdir(dir) => {
                let root = wc.rootfs.clone();
                tokio::task::spawn_blocking(move || {
                    crate::rootfs::mkdir_all(&root, std::path::Path::new(&dir), 0o755, (0, 0))
                        .map(drop)
                        .map_err(|e| BuildError::invalid(format!("mkdir {dir}: {e}")))
                })
                .await
                .map_err(|e| BuildError::invalid(e.to_string()))??;
            }
            LayerWork::Copy(plan) => {
                let root = wc.rootfs.clone();
                tokio::task::spawn_blocking(move || plan.execute(&root))
                    .await
                    .map_err(|e| BuildError::invalid(e.to_string()))??;
            }
        }
        self.check_cancel()?;
        let cfg = self.child_config(run, created_by, false);
        self.s.backend.commit(wc, cfg).await
    }

    async fn dispatch(&mut self, step: &Step) -> Result<()> {
        let nop = |text: String| format!("/bin/sh -c #(nop)  {text}");
        match &step.instruction {
            Instruction::From { .. } => Err(BuildError::invalid("FROM inside a stage")),
            Instruction::Env(pairs) => {
                let mut words = Vec::new();
                let mut run = self.config.config.clone();
                let mut env = run.env.take().unwrap_or_default();
                for (k, v) in pairs {
                    let k = self.expand(k)?;
                    let v = self.expand(v)?;
                    env.retain(|e| e.split_once('=').map_or(e.as_str(), |(ek, _)| ek) != k);
                    env.push(format!("{k}={v}"));
                    words.push(format!("{k}={v}"));
                }
                run.env = Some(env);
                self.metadata_step(nop(format!("ENV {}", words.join(" "))), run)
                    .await
            }
            Instruction::Label(pairs) => {
                let mut words = Vec::new();
                let mut run = self.config.config.clone();
                let labels = run.labels.get_or_insert_with(Default::default);
                for (k, v) in pairs {
                    let k = self.expand(k)?;
                    let v = self.expand(v)?;
                    words.push(format!("{k}={v}"));
                    labels.insert(k, v);
                }
                self.metadata_step(nop(format!("LABEL {}", words.join(" "))), run)
                    .await
            }
            Instruction::Arg(args) => {
                let mut words = Vec::new();
                for (name, default) in args {
                    let default = match default {
                        Some(d) => Some(self.expand(d)?),
                        None => None,
                    };
                    let value = match (self.s.opts.arg(name), &default) {
                        (Some(v), _) => Some(v.to_string()),
                        (None, Some(d)) => Some(d.clone()),
                        (None, None) => self.s.plan.global_args.get(name).cloned().flatten(),
                    };
                    self.args.retain(|(k, _)| k != name);
                    if let Some(v) = value {
                        self.args.push((name.clone(), v));
                    }
                    words.push(match &default {
                        Some(d) => format!("{name}={d}"),
                        None => name.clone(),
                    });
                }
                let run = self.config.config.clone();
                self.metadata_step(nop(format!("ARG {}", words.join(" "))), run)
                    .await
            }
            Instruction::Maintainer(m) => {
                self.author = m.clone();
                let run = self.config.config.clone();
                self.metadata_step(nop(format!("MAINTAINER {m}")), run)
                    .await
            }
            Instruction::Expose(text) => {
                let words = self
                    .lexer
                    .process_words(text, &self.expand_env())
                    .map_err(|e| BuildError::invalid(e.to_string()))?;
                let mut run = self.config.config.clone();
                let ports = run.exposed_ports.get_or_insert_with(Default::default);
                for w in &words {
                    for p in expand_ports(w)? {
                        ports.insert(p, Empty);
                    }
                }
                self.metadata_step(nop(format!("EXPOSE {}", words.join(" "))), run)
                    .await
            }
            Instruction::Volume(list) => {
                let mut run = self.config.config.clone();
                let mut shown = Vec::new();
                let vols = run.volumes.get_or_insert_with(Default::default);
                for v in list {
                    let v = self.expand(v)?;
                    if v.trim().is_empty() {
                        return Err(BuildError::invalid(
                            "VOLUME specified can not be an empty string",
                        ));
                    }
                    vols.insert(v.clone(), Empty);
                    shown.push(v);
                }
                self.metadata_step(nop(format!("VOLUME {}", gofmt::plain_list(&shown))), run)
                    .await
            }
            Instruction::User(u) => {
                let u = self.expand(u)?;
                let mut run = self.config.config.clone();
                run.user = u.clone();
                self.metadata_step(nop(format!("USER {u}")), run).await
            }
            Instruction::StopSignal(sig) => {
                let sig = self.expand(sig)?;
                berth_core::signal::parse(&sig)
                    .map_err(|_| BuildError::invalid(format!("Invalid signal: {sig}")))?;
                let mut run = self.config.config.clone();
                run.stop_signal = sig.clone();
                self.metadata_step(nop(format!("STOPSIGNAL {sig}")), run)
                    .await
            }
            Instruction::Healthcheck(h) => {
                let hc = healthcheck(h)?;
                let shown = format!(
                    "HEALTHCHECK &{{{} {} {} {} {}}}",
                    gofmt::quote_list(&hc.test),
                    gofmt::quote(&gofmt::duration(hc.interval)),
                    gofmt::quote(&gofmt::duration(hc.timeout)),
                    gofmt::quote(&gofmt::duration(hc.start_period)),
                    gofmt::quote_rune(hc.retries),
                );
                let mut run = self.config.config.clone();
                run.healthcheck = Some(hc);
                self.metadata_step(nop(shown), run).await
            }
            Instruction::Shell(sh) => {
                let mut run = self.config.config.clone();
                run.shell = Some(sh.clone());
                self.metadata_step(nop(format!("SHELL {}", gofmt::plain_list(sh))), run)
                    .await
            }
            Instruction::Cmd(c) => {
                let cmd = self.command(c);
                let mut run = self.config.config.clone();
                run.cmd = Some(cmd.clone());
                self.cmd_set = true;
                self.metadata_step(nop(format!("CMD {}", gofmt::quote_list(&cmd))), run)
                    .await
            }
            Instruction::Entrypoint(c) => {
                let ep = self.command(c);
                let mut run = self.config.config.clone();
                run.entrypoint = Some(ep.clone());
                if !self.cmd_set {
                    run.cmd = None;
                }
                self.metadata_step(nop(format!("ENTRYPOINT {}", gofmt::quote_list(&ep))), run)
                    .await
            }
            Instruction::Onbuild(t) => {
                let mut run = self.config.config.clone();
                run.on_build.get_or_insert_with(Vec::new).push(t.clone());
                self.metadata_step(nop(format!("ONBUILD {t}")), run).await
            }
            Instruction::Workdir(w) => {
                let w = self.expand(w)?;
                let base = if self.config.config.working_dir.is_empty() {
                    "/".to_string()
                } else {
                    self.config.config.working_dir.clone()
                };
                let joined = if w.starts_with('/') {
                    w
                } else {
                    format!("{}/{w}", base.trim_end_matches('/'))
                };
                let dir = crate::dockerignore::clean(&joined);
                self.layer_step(
                    format!("/bin/sh -c #(nop) WORKDIR {dir}"),
                    LayerWork::Workdir(dir),
                )
                .await
            }
            Instruction::Run {
                command,
                heredocs,
                network,
            } => {
                let (args, stdin_note) = run_args(command, heredocs, &self.shell());
                let shown = args.join(" ");
                let visible = self.visible_args();
                let mut created = args.clone();
                if !visible.is_empty() {
                    let mut listed: Vec<String> = visible
                        .iter()
                        .filter(|(_, _, declared)| *declared)
                        .map(|(k, v, _)| format!("{k}={v}"))
                        .collect();
                    listed.sort();
                    let mut pre = vec![format!("|{}", listed.len())];
                    pre.extend(listed);
                    pre.extend(created);
                    created = pre;
                }
                let mut created_by = created.join(" ");
                if let Some(n) = &stdin_note {
                    created_by.push_str(&format!(" <<{}", hash::hex_of(n.as_bytes())));
                }
                let mut env = self.env();
                for (k, v, _) in &visible {
                    env.push(format!("{k}={v}"));
                }
                let network_mode = match network {
                    Some(n) => self.expand(n)?,
                    None => self.s.opts.network_mode.clone(),
                };
                let req = RunRequest {
                    args,
                    env,
                    user: self.config.config.user.clone(),
                    working_dir: self.config.config.working_dir.clone(),
                    network_mode,
                    extra_hosts: self.s.opts.extra_hosts.clone(),
                    shm_size: self.s.opts.shm_size,
                    stdin: stdin_note.map(|s| s.into_bytes()),
                };
                self.layer_step(created_by, LayerWork::Run(req, shown))
                    .await
            }
            Instruction::Copy(c) => self.copy_step("COPY", c).await,
            Instruction::Add(c) => self.copy_step("ADD", c).await,
        }
    }

    fn command(&self, c: &CommandForm) -> Vec<String> {
        match c {
            CommandForm::Exec(v) => v.clone(),
            CommandForm::Shell(s) => {
                let mut v = self.shell();
                v.push(s.clone());
                v
            }
        }
    }

    async fn copy_step(&mut self, instruction: &'static str, c: &CopyArgs) -> Result<()> {
        let specs: Vec<String> = c
            .sources
            .iter()
            .map(|s| self.expand(s))
            .collect::<Result<_>>()?;
        let dest = self.expand(&c.dest)?;
        let chown = c.chown.as_ref().map(|v| self.expand(v)).transpose()?;
        let chmod = c
            .chmod
            .as_ref()
            .map(|v| self.expand(v).and_then(|m| copy::parse_chmod(&m)))
            .transpose()?;
        let from = c.from.as_ref().map(|v| self.expand(v)).transpose()?;
        // Sources in another stage or image are read from a working container of it.
        let mut from_wc = None;
        if let Some(f) = &from {
            let img = match plan::stage_ref(&self.s.df.stages, self.index, f) {
                Some(i) => self.stage_image(i).await?.ok_or_else(|| {
                    BuildError::invalid(format!("stage {f} has no image to copy from"))
                })?,
                None => self
                    .base_image(f, &self.s.opts.platform)
                    .await
                    .map_err(|e| {
                        BuildError::invalid(format!("invalid from flag value {f}: {e}"))
                    })?,
            };
            from_wc = Some(self.s.backend.create_working(Some(&img.id)).await?);
        }
        let tmp = tempfile::Builder::new()
            .prefix("copy-")
            .tempdir_in(self.s.ctx.root().parent().unwrap_or(self.s.ctx.root()))
            .map_err(|e| BuildError::io("creating a temp dir", e))?;
        let result = async {
            let items = self
                .copy_sources(
                    instruction,
                    &specs,
                    &c.heredocs,
                    from_wc.as_ref(),
                    tmp.path(),
                )
                .await?;
            let plan = CopyPlan {
                instruction,
                items,
                dest,
                workdir: self.config.config.working_dir.clone(),
                chown,
                chmod,
            };
            plan.check()?;
            let created_by = plan.created_by();
            self.layer_step(created_by, LayerWork::Copy(plan)).await
        }
        .await;
        if let Some(wc) = &from_wc {
            let removed = self.s.backend.remove_working(wc).await;
            result?;
            return removed;
        }
        result
    }

    async fn copy_sources(
        &self,
        instruction: &'static str,
        specs: &[String],
        heredocs: &[Heredoc],
        from: Option<&WorkingContainer>,
        tmp: &std::path::Path,
    ) -> Result<Vec<SourceItem>> {
        let mut items = Vec::new();
        for h in heredocs {
            let content = if h.expand {
                self.expand_heredoc(&h.content)?
            } else {
                h.content.clone()
            };
            let path = tmp.join(format!("heredoc-{}", items.len()));
            std::fs::write(&path, &content).map_err(|e| BuildError::io("writing a heredoc", e))?;
            items.push(SourceItem {
                source: Source {
                    host: path,
                    name: h.name.clone(),
                    hash: ("file", hash::hex_of(content.as_bytes())),
                    is_dir: false,
                },
                unpack: false,
                download: None,
            });
        }
        let mut local = Vec::new();
        for spec in specs {
            if instruction == "ADD" && fetch::is_url(spec) {
                let path = tmp.join(format!("download-{}", items.len()));
                let d = fetch::download(spec, &path).await?;
                let data =
                    std::fs::read(&path).map_err(|e| BuildError::io("reading a download", e))?;
                items.push(SourceItem {
                    source: Source {
                        host: path,
                        name: d.file_name,
                        hash: ("file", hash::hex_of(&data)),
                        is_dir: false,
                    },
                    unpack: false,
                    download: Some(d.last_modified),
                });
            } else {
                local.push(spec.clone());
            }
        }
        if !local.is_empty() {
            let sources = match from {
                Some(wc) => {
                    let root = wc.rootfs.clone();
                    tokio::task::spawn_blocking(move || {
                        copy::sources_in_root(instruction, &root, &local)
                    })
                    .await
                    .map_err(|e| BuildError::invalid(e.to_string()))??
                }
                None => self.s.ctx.sources(instruction, &local)?,
            };
            for source in sources {
                let unpack =
                    instruction == "ADD" && !source.is_dir && copy::is_archive(&source.host);
                items.push(SourceItem {
                    source,
                    unpack,
                    download: None,
                });
            }
        }
        if items.is_empty() {
            return Err(BuildError::Copy {
                instruction,
                message: "no source files were specified".into(),
            });
        }
        Ok(items)
    }

    /// Substitution in heredoc content keeps quotes (it is file content, not a word).
    fn expand_heredoc(&self, content: &str) -> Result<String> {
        let env = self.expand_env();
        let mut out = String::new();
        for line in content.split_inclusive('\n') {
            let escaped = line.replace('\'', "\u{0}").replace('"', "\u{1}");
            let v = self
                .lexer
                .process_word(&escaped, &env)
                .map_err(|e| BuildError::invalid(e.to_string()))?;
            out.push_str(&v.replace('\u{0}', "'").replace('\u{1}', "\""));
        }
        Ok(out)
    }
}

/// The argv of a RUN, with heredocs handled as BuildKit does: a lone heredoc is the script
/// (a `#!` script gets its interpreter and the script on stdin); otherwise the shell gets
/// the command with its heredocs back in place. Returns the argv and the stdin, if any.
fn run_args(
    command: &CommandForm,
    heredocs: &[Heredoc],
    shell: &[String],
) -> (Vec<String>, Option<String>) {
    match command {
        CommandForm::Exec(v) => (v.clone(), None),
        CommandForm::Shell(s) if heredocs.is_empty() => {
            let mut v = shell.to_vec();
            v.push(s.clone());
            (v, None)
        }
        CommandForm::Shell(s) => {
            let lone = heredocs.len() == 1 && {
                let t = s.trim();
                t.starts_with("<<") && !t.contains(char::is_whitespace)
            };
            if lone {
                let content = &heredocs[0].content;
                if let Some(first) = content.strip_prefix("#!") {
                    let interp = first.lines().next().unwrap_or("").trim();
                    let mut v: Vec<String> =
                        interp.split_whitespace().map(str::to_string).collect();
                    v.push("/dev/stdin".into());
                    return (v, Some(content.clone()));
                }
                let mut v = shell.to_vec();
                v.push(content.clone());
                return (v, None);
            }
            let mut full = s.clone();
            for h in heredocs {
                full.push('\n');
                full.push_str(&h.content);
                full.push_str(&h.name);
            }
            let mut v = shell.to_vec();
            v.push(full);
            (v, None)
        }
    }
}

/// `80`, `80/udp`, `8000-8002/tcp` → `80/tcp`, ...
fn expand_ports(word: &str) -> Result<Vec<String>> {
    let (ports, proto) = match word.split_once('/') {
        Some((p, proto)) => (p, proto.to_ascii_lowercase()),
        None => (word, "tcp".to_string()),
    };
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(BuildError::invalid(format!("invalid proto: {proto}")));
    }
    let bad = || BuildError::invalid(format!("invalid containerPort: {ports}"));
    let (lo, hi) = match ports.split_once('-') {
        Some((a, b)) => (
            a.parse::<u16>().map_err(|_| bad())?,
            b.parse::<u16>().map_err(|_| bad())?,
        ),
        None => {
            let p = ports.parse::<u16>().map_err(|_| bad())?;
            (p, p)
        }
    };
    if hi < lo {
        return Err(bad());
    }
    Ok((lo..=hi).map(|p| format!("{p}/{proto}")).collect())
}

fn healthcheck(h: &HealthcheckArgs) -> Result<ImageHealthcheck> {
    let dur = |name: &str, v: &Option<String>| -> Result<i64> {
        match v {
            None => Ok(0),
            Some(s) => {
                let d = gofmt::parse_duration(s).ok_or_else(|| {
                    BuildError::invalid(format!("time: invalid duration \"{s}\""))
                })?;
                if d != 0 && d < 1_000_000 {
                    return Err(BuildError::invalid(format!(
                        "Interval \"{name}\" cannot be less than 1ms"
                    )));
                }
                if d < 0 {
                    return Err(BuildError::invalid(format!("{name} cannot be negative")));
                }
                Ok(d)
            }
        }
    };
    let retries = match &h.retries {
        None => 0,
        Some(r) => {
            let n: i64 = r
                .parse()
                .map_err(|_| BuildError::invalid(format!("invalid retries value: {r}")))?;
            if n < 0 {
                return Err(BuildError::invalid(format!(
                    "--retries cannot be negative ({n})"
                )));
            }
            n
        }
    };
    Ok(ImageHealthcheck {
        test: h.test.clone(),
        interval: dur("interval", &h.interval)?,
        timeout: dur("timeout", &h.timeout)?,
        start_period: dur("start-period", &h.start_period)?,
        start_interval: dur("start-interval", &h.start_interval)?,
        retries,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_ranges_expand_and_protocols_default_to_tcp() {
        assert_eq!(expand_ports("80").unwrap(), vec!["80/tcp"]);
        assert_eq!(expand_ports("53/UDP").unwrap(), vec!["53/udp"]);
        assert_eq!(
            expand_ports("8000-8002").unwrap(),
            vec!["8000/tcp", "8001/tcp", "8002/tcp"]
        );
        assert!(expand_ports("http").is_err());
        assert!(expand_ports("80/icmp").is_err());
    }

    #[test]
    fn run_heredocs_become_scripts() {
        let sh = vec!["/bin/sh".to_string(), "-c".to_string()];
        let doc = |content: &str| Heredoc {
            name: "EOF".into(),
            content: content.into(),
            expand: true,
        };
        let (args, stdin) = run_args(
            &CommandForm::Shell("<<EOF".into()),
            &[doc("echo a\necho b\n")],
            &sh,
        );
        assert_eq!(args, vec!["/bin/sh", "-c", "echo a\necho b\n"]);
        assert!(stdin.is_none());
        let (args, stdin) = run_args(
            &CommandForm::Shell("<<EOF".into()),
            &[doc("#!/usr/bin/env python3\nprint(1)\n")],
            &sh,
        );
        assert_eq!(args, vec!["/usr/bin/env", "python3", "/dev/stdin"]);
        assert!(stdin.unwrap().contains("print(1)"));
        let (args, _) = run_args(
            &CommandForm::Shell("cat <<EOF > /f".into()),
            &[doc("x\n")],
            &sh,
        );
        assert_eq!(args[2], "cat <<EOF > /f\nx\nEOF");
    }

    #[test]
    fn cache_keys_follow_text_and_config() {
        let a = RunConfig::default();
        let b = RunConfig {
            env: Some(vec!["A=1".into()]),
            ..Default::default()
        };
        let k = cache_key("/bin/sh -c true", &a, "linux/amd64");
        assert_eq!(k, cache_key("/bin/sh -c true", &a, "linux/amd64"));
        assert_ne!(k, cache_key("/bin/sh -c false", &a, "linux/amd64"));
        assert_ne!(k, cache_key("/bin/sh -c true", &b, "linux/amd64"));
        assert_eq!(short_id("sha256:0123456789abcdef"), "0123456789ab");
    }

    #[test]
    fn healthchecks_parse_durations_and_refuse_tiny_ones() {
        let h = healthcheck(&HealthcheckArgs {
            test: vec!["CMD-SHELL".into(), "true".into()],
            interval: Some("5s".into()),
            retries: Some("3".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(h.interval, 5_000_000_000);
        assert_eq!(h.retries, 3);
        assert!(healthcheck(&HealthcheckArgs {
            interval: Some("10us".into()),
            ..Default::default()
        })
        .is_err());
    }
}
