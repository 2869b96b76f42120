//! `berth compose`: Docker Compose v2's commands, driven over the Engine API.
//!
//! [`compose`] parses the global flags (`-f`, `-p`, `--project-directory`, `--env-file`,
//! `--profile`, `--ansi`, `--progress`), picks the subcommand and parses its flags, loads
//! the project with `berth-compose`, and runs the subcommand in one of the files here:
//! [`up`] (up, create, start and the convergence they share), [`lifecycle`] (down, stop,
//! restart, rm, kill, pause, unpause, wait), [`logs`] (log streams with coloured prefixes),
//! [`info`] (ps, ls, images, top, port, config, version, events), [`run`] (run, exec) and
//! [`image`] (build, pull, push). [`progress`] prints the per-resource progress lines.
//!
//! Containers are found by Compose's labels, never by name, so projects made by Docker
//! Compose are managed too, and the other way round.

mod image;
mod info;
mod lifecycle;
mod logs;
mod progress;
mod run;
mod up;

use super::{esc, Ctx};
use crate::client::{Client, ClientError};
use crate::flags::{self, b, default_true, l, v, vd, Flag, FlagError, Parsed, Spec};
use crate::StatusError;
use berth_compose::{names, LoadOptions, Project};
use serde_json::{json, Value as Json};
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Arc;

pub use progress::{Progress, ProgressMode};

const SUBCOMMANDS: &[(&str, &str)] = &[
    ("build", "Build or rebuild services"),
    (
        "config",
        "Parse, resolve and render compose file in canonical format",
    ),
    ("create", "Creates containers for a service"),
    ("down", "Stop and remove containers, networks"),
    ("events", "Receive real time events from containers"),
    ("exec", "Execute a command in a running container"),
    ("images", "List images used by the created containers"),
    ("kill", "Force stop service containers"),
    ("logs", "View output from containers"),
    ("ls", "List running compose projects"),
    ("pause", "Pause services"),
    ("port", "Print the public port for a port binding"),
    ("ps", "List containers"),
    ("pull", "Pull service images"),
    ("push", "Push service images"),
    ("restart", "Restart service containers"),
    ("rm", "Removes stopped service containers"),
    ("run", "Run a one-off command on a service"),
    ("start", "Start services"),
    ("stop", "Stop services"),
    ("top", "Display the running processes"),
    ("unpause", "Unpause services"),
    ("up", "Create and start containers"),
    ("version", "Show the Docker Compose version information"),
    (
        "wait",
        "Block until containers of all (or specified) services stop.",
    ),
];

fn global_spec() -> Spec {
    Spec {
        usage: "compose [OPTIONS] COMMAND",
        about: "Define and run multi-container applications with berth",
        aliases: "",
        flags: vec![
            v("ansi", None, "string", "Control when to print ANSI control characters (\"never\"|\"always\"|\"auto\")"),
            b("compatibility", None, "Run compose in backward compatibility mode"),
            b("dry-run", None, "Execute command in dry run mode"),
            l("env-file", None, "Specify an alternate environment file"),
            l("file", Some('f'), "Compose configuration files"),
            vd("parallel", None, "int", "-1", "Control max parallelism, -1 for unlimited"),
            l("profile", None, "Specify a profile to enable"),
            vd("progress", None, "string", "auto", "Set type of progress output (auto, tty, plain, json, quiet)"),
            v("project-directory", None, "string", "Specify an alternate working directory\n(default: the path of the, first specified, Compose file)"),
            v("project-name", Some('p'), "string", "Project name"),
        ],
        stop_at_positional: true,
        no_short_help: false,
    }
}

fn sub(usage: &'static str, about: &'static str, flags: Vec<Flag>) -> Spec {
    Spec {
        usage,
        about,
        aliases: "",
        flags,
        stop_at_positional: false,
        no_short_help: false,
    }
}

fn timeout_flag() -> Flag {
    v(
        "timeout",
        Some('t'),
        "int",
        "Specify a shutdown timeout in seconds",
    )
}

fn sub_spec(name: &str) -> Option<Spec> {
    let s = match name {
        "up" | "create" => {
            let mut f = vec![
                b("build", None, "Build images before starting containers"),
                b("force-recreate", None, "Recreate containers even if their configuration and image haven't changed"),
                b("no-build", None, "Don't build an image, even if it's policy"),
                b("no-recreate", None, "If containers already exist, don't recreate them. Incompatible with --force-recreate."),
                v("pull", None, "string", "Pull image before running (\"always\"|\"missing\"|\"never\"|\"build\")"),
                b("quiet-pull", None, "Pull without printing progress information"),
                b("remove-orphans", None, "Remove containers for services not defined in the Compose file"),
                l("scale", None, "Scale SERVICE to NUM instances. Overrides the `scale` setting in the Compose file if present."),
            ];
            if name == "up" {
                f.extend([
                    b("abort-on-container-exit", None, "Stops all containers if any container was stopped. Incompatible with -d"),
                    l("attach", None, "Restrict attaching to the specified services. Incompatible with --attach-dependencies."),
                    b("detach", Some('d'), "Detached mode: Run containers in the background"),
                    v("exit-code-from", None, "string", "Return the exit code of the selected service container. Implies --abort-on-container-exit"),
                    b("no-attach", None, "Do not attach (stream logs) to the specified services"),
                    b("no-color", None, "Produce monochrome output"),
                    b("no-deps", None, "Don't start linked services"),
                    b("no-log-prefix", None, "Don't print prefix in logs"),
                    b("no-start", None, "Don't start the services after creating them"),
                    b("renew-anon-volumes", Some('V'), "Recreate anonymous volumes instead of retrieving data from the previous containers"),
                    timeout_flag(),
                    b("wait", None, "Wait for services to be running|healthy. Implies detached mode."),
                    v("wait-timeout", None, "int", "Maximum duration in seconds to wait for the project to be running|healthy"),
                ]);
                sub("up [OPTIONS] [SERVICE...]", "Create and start containers", f)
            } else {
                sub("create [OPTIONS] [SERVICE...]", "Creates containers for a service", f)
            }
        }
        "down" => sub("down [OPTIONS] [SERVICES]", "Stop and remove containers, networks", vec![
            b("remove-orphans", None, "Remove containers for services not defined in the Compose file"),
            v("rmi", None, "string", "Remove images used by services. \"local\" remove only images that don't have a custom tag (\"local\"|\"all\")"),
            timeout_flag(),
            b("volumes", Some('v'), "Remove named volumes declared in the \"volumes\" section of the Compose file and anonymous volumes attached to containers"),
        ]),
        "ps" => sub("ps [OPTIONS] [SERVICE...]", "List containers", vec![
            b("all", Some('a'), "Show all stopped containers (including those created by the run command)"),
            l("filter", None, "Filter services by a property (supported filters: status)"),
            vd("format", None, "string", "table", "Format output using a custom template"),
            b("no-trunc", None, "Don't truncate output"),
            b("orphans", None, "Include orphaned services (not declared by project)"),
            b("quiet", Some('q'), "Only display IDs"),
            b("services", None, "Display services"),
            l("status", None, "Filter services by status. Values: [paused | restarting | removing | running | dead | created | exited]"),
        ]),
        "logs" => sub("logs [OPTIONS] [SERVICE...]", "View output from containers", vec![
            b("follow", Some('f'), "Follow log output"),
            v("index", None, "int", "index of the container if service has multiple replicas"),
            b("no-color", None, "Produce monochrome output"),
            b("no-log-prefix", None, "Don't print prefix in logs"),
            v("since", None, "string", "Show logs since timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m for 42 minutes)"),
            vd("tail", Some('n'), "string", "all", "Number of lines to show from the end of the logs for each container"),
            b("timestamps", Some('t'), "Show timestamps"),
            v("until", None, "string", "Show logs before a timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m for 42 minutes)"),
        ]),
        "build" => sub("build [OPTIONS] [SERVICE...]", "Build or rebuild services", vec![
            l("build-arg", None, "Set build-time variables for services"),
            b("no-cache", None, "Do not use cache when building the image"),
            b("pull", None, "Always attempt to pull a newer version of the image"),
            b("quiet", Some('q'), "Don't print anything to STDOUT"),
            b("with-dependencies", None, "Also build dependencies (transitively)"),
        ]),
        "pull" => sub("pull [OPTIONS] [SERVICE...]", "Pull service images", vec![
            b("ignore-buildable", None, "Ignore images that can be built"),
            b("ignore-pull-failures", None, "Pull what it can and ignores images with pull failures"),
            b("include-deps", None, "Also pull services declared as dependencies"),
            v("policy", None, "string", "Apply pull policy (\"missing\"|\"always\")"),
            b("quiet", Some('q'), "Pull without printing progress information"),
        ]),
        "push" => sub("push [OPTIONS] [SERVICE...]", "Push service images", vec![
            b("ignore-push-failures", None, "Push what it can and ignores images with push failures"),
            b("include-deps", None, "Also push images of services declared as dependencies"),
            b("quiet", Some('q'), "Push without printing progress information"),
        ]),
        "start" => sub("start [SERVICE...]", "Start services", vec![
            b("wait", None, "Wait for services to be running|healthy. Implies detached mode."),
            v("wait-timeout", None, "int", "Maximum duration in seconds to wait for the project to be running|healthy"),
        ]),
        "stop" => sub("stop [OPTIONS] [SERVICE...]", "Stop services", vec![timeout_flag()]),
        "restart" => sub("restart [OPTIONS] [SERVICE...]", "Restart service containers", vec![
            b("no-deps", None, "Don't restart dependent services"),
            timeout_flag(),
        ]),
        "rm" => sub("rm [OPTIONS] [SERVICE...]", "Removes stopped service containers", vec![
            b("force", Some('f'), "Don't ask to confirm removal"),
            b("stop", Some('s'), "Stop the containers, if required, before removing"),
            b("volumes", Some('v'), "Remove any anonymous volumes attached to containers"),
        ]),
        "kill" => sub("kill [OPTIONS] [SERVICE...]", "Force stop service containers", vec![
            b("remove-orphans", None, "Remove containers for services not defined in the Compose file"),
            vd("signal", Some('s'), "string", "SIGKILL", "SIGNAL to send to the container"),
        ]),
        "pause" => sub("pause [SERVICE...]", "Pause services", vec![]),
        "unpause" => sub("unpause [SERVICE...]", "Unpause services", vec![]),
        "wait" => sub("wait SERVICE [SERVICE...] [OPTIONS]", "Block until containers of all (or specified) services stop.", vec![
            b("down-project", None, "Drops project when the first container stops"),
        ]),
        "exec" => Spec {
            stop_at_positional: true,
            ..sub("exec [OPTIONS] SERVICE COMMAND [ARGS...]", "Execute a command in a running container", vec![
                b("detach", Some('d'), "Detached mode: Run command in the background"),
                l("env", Some('e'), "Set environment variables"),
                vd("index", None, "int", "0", "Index of the container if service has multiple replicas"),
                default_true(b("interactive", Some('i'), "Keep STDIN open even if not attached")),
                b("no-TTY", Some('T'), "Disable pseudo-TTY allocation. By default `berth compose exec` allocates a TTY."),
                b("privileged", None, "Give extended privileges to the process"),
                v("user", Some('u'), "string", "Run the command as this user"),
                v("workdir", Some('w'), "string", "Path to workdir directory for this command"),
            ])
        },
        "run" => Spec {
            stop_at_positional: true,
            ..sub("run [OPTIONS] SERVICE [COMMAND] [ARGS...]", "Run a one-off command on a service", vec![
                b("build", None, "Build image before starting container"),
                b("detach", Some('d'), "Run container in background and print container ID"),
                v("entrypoint", None, "string", "Override the entrypoint of the image"),
                l("env", Some('e'), "Set environment variables"),
                default_true(b("interactive", Some('i'), "Keep STDIN open even if not attached")),
                l("label", Some('l'), "Add or override a label"),
                v("name", None, "string", "Assign a name to the container"),
                b("no-TTY", Some('T'), "Disable pseudo-TTY allocation (default: auto-detected)"),
                b("no-deps", None, "Don't start linked services"),
                l("publish", Some('p'), "Publish a container's port(s) to the host"),
                b("quiet-pull", None, "Pull without printing progress information"),
                b("remove-orphans", None, "Remove containers for services not defined in the Compose file"),
                b("rm", None, "Automatically remove the container when it exits"),
                b("service-ports", Some('P'), "Run command with all service's ports enabled and mapped to the host"),
                b("use-aliases", None, "Use the service's network useAliases in the network(s) the container connects to"),
                v("user", Some('u'), "string", "Run as specified username or uid"),
                l("volume", Some('v'), "Bind mount a volume"),
                v("workdir", Some('w'), "string", "Working directory inside the container"),
            ])
        },
        "config" => sub("config [OPTIONS] [SERVICE...]", "Parse, resolve and render compose file in canonical format", vec![
            vd("format", None, "string", "yaml", "Format the output. Values: [yaml | json]"),
            v("hash", None, "string", "Print the service config hash, one per line."),
            b("images", None, "Print the image names, one per line."),
            b("networks", None, "Print the network names, one per line."),
            v("output", Some('o'), "string", "Save to file (default to stdout)"),
            b("profiles", None, "Print the profile names, one per line."),
            b("quiet", Some('q'), "Only validate the configuration, don't print anything."),
            b("services", None, "Print the service names, one per line."),
            b("volumes", None, "Print the volume names, one per line."),
        ]),
        "top" => sub("top [SERVICES...]", "Display the running processes", vec![]),
        "images" => sub("images [OPTIONS] [SERVICE...]", "List images used by the created containers", vec![
            vd("format", None, "string", "table", "Format the output. Values: [table | json]"),
            b("quiet", Some('q'), "Only display IDs"),
        ]),
        "port" => sub("port [OPTIONS] SERVICE PRIVATE_PORT", "Print the public port for a port binding", vec![
            vd("index", None, "int", "0", "Index of the container if service has multiple replicas"),
            vd("protocol", None, "string", "tcp", "tcp or udp"),
        ]),
        "events" => sub("events [OPTIONS] [SERVICE...]", "Receive real time events from containers", vec![
            b("json", None, "Output events as a stream of json objects"),
        ]),
        "ls" => sub("ls [OPTIONS]", "List running compose projects", vec![
            b("all", Some('a'), "Show all stopped Compose projects"),
            l("filter", None, "Filter output based on conditions provided"),
            vd("format", None, "string", "table", "Format the output. Values: [table | json]"),
            b("quiet", Some('q'), "Only display IDs"),
        ]),
        "version" => sub("version [OPTIONS]", "Show the Docker Compose version information", vec![
            v("format", Some('f'), "string", "Format the output. Values: [pretty | json]. (Default: pretty)"),
            b("short", None, "Shows only Compose's version number"),
        ]),
        _ => return None,
    };
    Some(s)
}

fn help() -> String {
    let mut s = flags::help("berth", &global_spec());
    s.push_str("\nCommands:\n");
    for (n, a) in SUBCOMMANDS {
        s.push_str(&format!("  {n:<11} {a}\n"));
    }
    s.push_str("\nRun 'berth compose COMMAND --help' for more information on a command.\n");
    s
}

/// Where compose progress goes, and whether output may be coloured.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    pub progress: ProgressMode,
    /// ANSI colours on stdout (log prefixes).
    pub color: bool,
}

/// One invocation: the client, the loaded project and the output settings.
pub struct Compose {
    pub client: Client,
    pub project: Project,
    pub out: Output,
}

/// A project container as `/containers/json` lists it, with its Compose labels read.
#[derive(Debug, Clone)]
pub struct Ctr {
    pub id: String,
    pub name: String,
    pub service: String,
    pub number: u64,
    pub oneoff: bool,
    pub state: String,
    pub raw: Json,
}

impl Ctr {
    fn from(raw: &Json) -> Self {
        let label = |k: &str| raw["Labels"][k].as_str().unwrap_or("").to_string();
        Ctr {
            id: raw["Id"].as_str().unwrap_or("").to_string(),
            name: raw["Names"][0]
                .as_str()
                .unwrap_or("")
                .trim_start_matches('/')
                .to_string(),
            service: label(names::SERVICE),
            number: label(names::NUMBER).parse().unwrap_or(0),
            oneoff: label(names::ONEOFF).eq_ignore_ascii_case("true"),
            state: raw["State"].as_str().unwrap_or("").to_string(),
            raw: raw.clone(),
        }
    }

    pub fn label(&self, k: &str) -> String {
        self.raw["Labels"][k].as_str().unwrap_or("").to_string()
    }

    pub fn running(&self) -> bool {
        matches!(self.state.as_str(), "running" | "restarting" | "paused")
    }
}

/// Which containers a listing includes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OneOff {
    Exclude,
    Include,
}

impl Compose {
    /// The project's containers (`all` includes stopped ones), sorted by service and number.
    pub async fn containers(&self, all: bool, oneoff: OneOff) -> anyhow::Result<Vec<Ctr>> {
        let mut labels = vec![names::project_filter(&self.project.name)];
        match oneoff {
            OneOff::Exclude => labels.push(format!("{}=False", names::ONEOFF)),
            OneOff::Include => {}
        }
        let filters = json!({ "label": labels }).to_string();
        let mut q = vec![("filters", filters)];
        if all {
            q.push(("all", "1".into()));
        }
        let list = self.client.get_json("/containers/json", &q).await?;
        let mut out: Vec<Ctr> = list
            .as_array()
            .into_iter()
            .flatten()
            .map(Ctr::from)
            .collect();
        out.sort_by(|a, b| (&a.service, a.number, &a.name).cmp(&(&b.service, b.number, &b.name)));
        Ok(out)
    }

    /// Containers of the given services (all when empty), checking the names exist.
    pub async fn service_containers(
        &self,
        services: &[String],
        all: bool,
    ) -> anyhow::Result<Vec<Ctr>> {
        self.check_services(services)?;
        let list = self.containers(all, OneOff::Exclude).await?;
        Ok(list
            .into_iter()
            .filter(|c| services.is_empty() || services.contains(&c.service))
            .collect())
    }

    pub fn check_services(&self, services: &[String]) -> anyhow::Result<()> {
        for s in services {
            if !self.project.services.contains_key(s) && !self.project.disabled.contains_key(s) {
                anyhow::bail!("no such service: {s}");
            }
        }
        Ok(())
    }

    /// Services named on the command line, or all.
    pub fn selected(&self, args: &[String]) -> Vec<String> {
        if args.is_empty() {
            self.project.services.keys().cloned().collect()
        } else {
            args.to_vec()
        }
    }

    /// [`Compose::selected`], with their dependencies (transitively) when `deps`.
    pub fn selected_with_deps(&self, args: &[String], deps: bool) -> Vec<String> {
        if deps {
            berth_compose::graph::with_dependencies(&self.project, args)
                .into_iter()
                .collect()
        } else {
            self.selected(args)
        }
    }

    pub fn progress(&self) -> Progress {
        Progress::new(self.out.progress)
    }
}

/// Runs `f` for each service after the services in its entry of `deps` finished; services
/// without a dependency between them run concurrently. A service whose dependency failed
/// is skipped. Returns the first error.
pub async fn in_dependency_order<F, Fut>(
    deps: BTreeMap<String, BTreeSet<String>>,
    f: F,
) -> anyhow::Result<()>
where
    F: Fn(String) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let f = Arc::new(f);
    let mut senders = BTreeMap::new();
    let mut receivers = BTreeMap::new();
    for name in deps.keys() {
        let (tx, rx) = tokio::sync::watch::channel(None::<bool>);
        senders.insert(name.clone(), tx);
        receivers.insert(name.clone(), rx);
    }
    let mut tasks = Vec::new();
    for (name, ds) in deps {
        let tx = senders.remove(&name).expect("a sender per service");
        let waits: Vec<_> = ds
            .iter()
            .filter_map(|d| receivers.get(d).cloned())
            .collect();
        let f = f.clone();
        tasks.push(tokio::spawn(async move {
            for mut rx in waits {
                let ok = rx.wait_for(|v| v.is_some()).await.map(|v| *v == Some(true));
                if !matches!(ok, Ok(true)) {
                    let _ = tx.send(Some(false));
                    return Ok(());
                }
            }
            let r = f(name).await;
            let _ = tx.send(Some(r.is_ok()));
            r
        }));
    }
    let mut first = None;
    for t in tasks {
        match t.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                if first.is_none() {
                    first = Some(e);
                }
            }
            Err(e) => {
                if first.is_none() {
                    first = Some(anyhow::anyhow!("{e}"));
                }
            }
        }
    }
    match first {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// The dependency map restricted to `names`.
pub fn deps_among(
    project: &Project,
    names: &BTreeSet<String>,
) -> BTreeMap<String, BTreeSet<String>> {
    berth_compose::graph::dependency_map(project)
        .into_iter()
        .filter(|(n, _)| names.contains(n))
        .map(|(n, ds)| (n, ds.into_iter().filter(|d| names.contains(d)).collect()))
        .collect()
}

/// The reverse map: each service waits for the services that depend on it (stop order).
pub fn dependents_among(
    project: &Project,
    names: &BTreeSet<String>,
) -> BTreeMap<String, BTreeSet<String>> {
    let deps = deps_among(project, names);
    let mut out: BTreeMap<String, BTreeSet<String>> =
        names.iter().map(|n| (n.clone(), BTreeSet::new())).collect();
    for (n, ds) in deps {
        for d in ds {
            out.entry(d).or_default().insert(n.clone());
        }
    }
    out
}

fn environ() -> BTreeMap<String, String> {
    std::env::vars().collect()
}

/// Loads the project the global flags describe. With `-p` and no file, commands that
/// only need the name (`down`, `ps`, `logs`) work on the name alone.
fn load_project(g: &Parsed, stdin_needed: bool) -> anyhow::Result<Project> {
    let stdin = if stdin_needed {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)?;
        Some(s)
    } else {
        None
    };
    let opts = LoadOptions {
        files: g.list("file").into_iter().map(Into::into).collect(),
        project_name: Some(g.string("project-name")).filter(|s| !s.is_empty()),
        project_directory: Some(g.string("project-directory"))
            .filter(|s| !s.is_empty())
            .map(Into::into),
        env_files: g.list("env-file").into_iter().map(Into::into).collect(),
        profiles: g.list("profile"),
        working_dir: std::env::current_dir()?,
        environ: environ(),
        stdin,
    };
    match Project::load(&opts) {
        Ok(p) => {
            for w in &p.warnings {
                eprintln!("WARN[0000] {w}");
            }
            Ok(p)
        }
        Err(berth_compose::Error::NoFile { .. }) if opts.project_name.is_some() => Ok(Project {
            name: opts.project_name.clone().unwrap_or_default(),
            working_dir: opts.working_dir.clone(),
            ..Default::default()
        }),
        Err(e) => Err(e.into()),
    }
}

/// `berth compose ARGS...`.
pub async fn compose(ctx: &mut Ctx, argv: Vec<String>) -> anyhow::Result<()> {
    let g = match flags::parse(&global_spec(), &argv) {
        Ok(g) => g,
        Err(FlagError::Help) => {
            print!("{}", help());
            return Ok(());
        }
        Err(FlagError::Message(m)) => {
            return Err(StatusError::exit(
                1,
                format!("{m}\nSee 'berth compose --help'."),
            ))
        }
    };
    let Some(cmd) = g.args.first().cloned() else {
        print!("{}", help());
        return Ok(());
    };
    let Some(spec) = sub_spec(&cmd) else {
        return Err(StatusError::exit(
            1,
            format!(
                "unknown compose command: {cmd:?}\nRun 'berth compose --help' for more information"
            ),
        ));
    };
    let p = match flags::parse(&spec, &g.args[1..]) {
        Ok(p) => p,
        Err(FlagError::Help) => {
            let usage = format!("compose {}", spec.usage);
            print!(
                "{}",
                flags::help(
                    "berth",
                    &Spec {
                        usage: Box::leak(usage.into_boxed_str()),
                        ..spec
                    }
                )
            );
            return Ok(());
        }
        Err(FlagError::Message(m)) => {
            return Err(StatusError::exit(
                1,
                format!("{m}\nSee 'berth compose {cmd} --help'."),
            ))
        }
    };
    if cmd == "version" {
        return info::version(&p);
    }
    let ansi = g.string("ansi");
    let color = match ansi.as_str() {
        "never" => false,
        "always" => true,
        "" | "auto" => crate::term::stdout_is_tty() && std::env::var_os("NO_COLOR").is_none(),
        other => anyhow::bail!("invalid --ansi value {other:?}: must be never, always or auto"),
    };
    let progress = ProgressMode::parse(&g.string("progress"), &ansi)?;
    let out = Output { progress, color };
    let client = ctx.client().await?.clone();
    if cmd == "ls" {
        return info::ls(&client, &p).await;
    }
    let stdin_needed = g.list("file").iter().any(|f| f == "-");
    let mut project = load_project(&g, stdin_needed)?;
    // Services named on the command line are enabled whatever their profiles.
    let named: Vec<String> = match cmd.as_str() {
        "up" | "create" | "start" | "build" | "pull" | "push" | "config" => p.args.clone(),
        "run" | "exec" => p.args.first().cloned().into_iter().collect(),
        _ => Vec::new(),
    };
    let named: Vec<String> = named
        .into_iter()
        .filter(|n| project.disabled.contains_key(n))
        .collect();
    if !named.is_empty() {
        project.enable(&named)?;
    }
    let c = Compose {
        client,
        project,
        out,
    };
    match cmd.as_str() {
        "up" => up::up_command(&c, &p).await,
        "create" => up::create_command(&c, &p).await,
        "start" => up::start_command(&c, &p).await,
        "down" => lifecycle::down(&c, &p).await,
        "stop" => lifecycle::stop(&c, &p).await,
        "restart" => lifecycle::restart(&c, &p).await,
        "rm" => lifecycle::rm(&c, &p).await,
        "kill" => lifecycle::kill(&c, &p).await,
        "pause" => lifecycle::pause(&c, &p, true).await,
        "unpause" => lifecycle::pause(&c, &p, false).await,
        "wait" => lifecycle::wait(&c, &p).await,
        "logs" => logs::logs_command(&c, &p).await,
        "ps" => info::ps(&c, &p).await,
        "images" => info::images(&c, &p).await,
        "top" => info::top(&c, &p).await,
        "port" => info::port(&c, &p).await,
        "config" => info::config(&c, &p),
        "events" => info::events(&c, &p).await,
        "build" => image::build_command(&c, &p).await,
        "pull" => image::pull_command(&c, &p).await,
        "push" => image::push_command(&c, &p).await,
        "run" => run::run(ctx, &c, &p).await,
        "exec" => run::exec(ctx, &c, &p).await,
        other => anyhow::bail!("unknown compose command: {other:?}"),
    }
}

/// The `-t/--timeout` flag as the stop API's `t` parameter, if given.
pub fn timeout_query(p: &Parsed) -> anyhow::Result<Vec<(&'static str, String)>> {
    let t = p.string("timeout");
    if t.is_empty() {
        return Ok(Vec::new());
    }
    let n: i64 = t
        .parse()
        .map_err(|_| anyhow::anyhow!("invalid argument {t:?} for \"-t, --timeout\" flag"))?;
    Ok(vec![("t", n.to_string())])
}

/// Sends one request, treating "not modified" (already started/stopped) as success.
pub async fn post_ok(client: &Client, path: &str, q: &[(&str, String)]) -> anyhow::Result<()> {
    match client.post(path, q, None).await {
        Ok(_) => Ok(()),
        Err(ClientError::Api { status: 304, .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// The container path for an id.
pub fn ctr_path(id: &str, op: &str) -> String {
    if op.is_empty() {
        format!("/containers/{}", esc(id))
    } else {
        format!("/containers/{}/{op}", esc(id))
    }
}
