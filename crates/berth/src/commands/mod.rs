//! Command table and dispatch: each command's usage line, flags and argument rule, the
//! management aliases (`container ls` = `ps`, `image rm` = `rmi`), and [`Ctx`], which owns
//! the API client and negotiates the API version on first use.

mod build;
mod changes;
mod compose;
mod container;
mod cp;
mod cp_fds;
mod events;
mod exec;
mod image;
mod inspect;
mod list;
mod network;
mod registry;
mod stats;
mod system;
mod volume;

use crate::client::{Client, ClientError, TlsOptions};
use crate::flags::{self, b, default_true, l, v, vd, Flag, FlagError, Spec};
use crate::StatusError;

/// One-line summaries for the root help (printed sorted).
pub const SUMMARY: &[(&str, &str)] = &[
    (
        "attach",
        "Attach local standard input, output, and error streams to a running container",
    ),
    ("build", "Build an image from a Dockerfile"),
    ("create", "Create a new container"),
    ("exec", "Execute a command in a running container"),
    ("history", "Show the history of an image"),
    ("images", "List images"),
    (
        "import",
        "Import the contents from a tarball to create a filesystem image",
    ),
    ("info", "Display system-wide information"),
    ("inspect", "Return low-level information on Docker objects"),
    ("kill", "Kill one or more running containers"),
    ("load", "Load an image from a tar archive or STDIN"),
    ("login", "Authenticate to a registry"),
    ("logout", "Log out from a registry"),
    ("logs", "Fetch the logs of a container"),
    ("pause", "Pause all processes within one or more containers"),
    (
        "port",
        "List port mappings or a specific mapping for the container",
    ),
    ("ps", "List containers"),
    ("pull", "Download an image from a registry"),
    ("push", "Upload an image to a registry"),
    ("rename", "Rename a container"),
    ("restart", "Restart one or more containers"),
    ("rm", "Remove one or more containers"),
    ("rmi", "Remove one or more images"),
    ("run", "Create and run a new container from an image"),
    (
        "save",
        "Save one or more images to a tar archive (streamed to STDOUT by default)",
    ),
    ("start", "Start one or more stopped containers"),
    ("stop", "Stop one or more running containers"),
    (
        "tag",
        "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE",
    ),
    ("top", "Display the running processes of a container"),
    (
        "unpause",
        "Unpause all processes within one or more containers",
    ),
    ("update", "Update configuration of one or more containers"),
    ("version", "Show the Docker version information"),
    (
        "wait",
        "Block until one or more containers stop, then print their exit codes",
    ),
    ("search", "Search Docker Hub for images"),
    (
        "cp",
        "Copy files/folders between a container and the local filesystem",
    ),
    ("commit", "Create a new image from a container's changes"),
    (
        "diff",
        "Inspect changes to files or directories on a container's filesystem",
    ),
    ("export", "Export a container's filesystem as a tar archive"),
    (
        "stats",
        "Display a live stream of container(s) resource usage statistics",
    ),
    ("events", "Get real time events from the server"),
];

/// Shared state of one invocation.
pub struct Ctx {
    host: String,
    tls: Option<TlsOptions>,
    client: Option<Client>,
    pub debug: bool,
    /// `--config`: docker's client configuration directory, when given.
    pub config_dir: String,
}

impl Ctx {
    pub fn new(host: String, tls: Option<TlsOptions>, debug: bool) -> Self {
        Self {
            host,
            tls,
            client: None,
            debug,
            config_dir: String::new(),
        }
    }

    /// The `X-Registry-Auth` header docker sends for an image reference's registry.
    pub fn registry_auth(&self, domain: &str) -> anyhow::Result<String> {
        let cfg =
            crate::config::ConfigFile::load(&crate::config::config_dir(Some(&self.config_dir)))?;
        crate::config::registry_auth_header(&cfg, domain)
    }

    /// The client, after version negotiation (one `/_ping`).
    pub async fn client(&mut self) -> anyhow::Result<&Client> {
        if self.client.is_none() {
            let mut c = Client::new(&self.host, self.tls.clone())?;
            c.negotiate().await?;
            self.client = Some(c);
        }
        Ok(self.client.as_ref().expect("client was just set"))
    }
}

/// How many positional arguments a command takes.
#[derive(Clone, Copy)]
pub enum Args {
    None,
    Exact(usize),
    Min(usize),
    Range(usize, usize),
}

pub struct Command {
    pub spec: Spec,
    pub args: Args,
}

fn cmd(
    usage: &'static str,
    about: &'static str,
    aliases: &'static str,
    args: Args,
    flags: Vec<Flag>,
) -> Command {
    Command {
        spec: Spec {
            usage,
            about,
            aliases,
            flags,
            stop_at_positional: false,
            no_short_help: false,
        },
        args,
    }
}

fn format_flag(help: &'static str) -> Flag {
    v("format", None, "string", help)
}

fn filter_flag() -> Flag {
    Flag {
        typ: "filter",
        ..l(
            "filter",
            Some('f'),
            "Filter output based on conditions provided",
        )
    }
}

/// The command spec for a canonical command name.
pub fn command(name: &str) -> Option<Command> {
    use Args::{Exact, Min, Range};
    let c = match name {
        "run" | "create" => {
            let mut flags = crate::opts::container_flags();
            if name == "run" {
                flags.push(b("detach", Some('d'), "Run container in background and print container ID"));
                flags.push(default_true(b("sig-proxy", None, "Proxy received signals to the process")));
                flags.push(v("detach-keys", None, "string", "Override the key sequence for detaching a container"));
            }
            let (usage, about, aliases) = if name == "run" {
                ("run [OPTIONS] IMAGE [COMMAND] [ARG...]", "Create and run a new container from an image", "berth container run, berth run")
            } else {
                ("create [OPTIONS] IMAGE [COMMAND] [ARG...]", "Create a new container", "berth container create, berth create")
            };
            Command { spec: Spec { usage, about, aliases, flags, stop_at_positional: true, no_short_help: true }, args: Min(1) }
        }
        "start" => cmd("start [OPTIONS] CONTAINER [CONTAINER...]", "Start one or more stopped containers", "berth container start, berth start", Min(1), vec![
            b("attach", Some('a'), "Attach STDOUT/STDERR and forward signals"),
            v("detach-keys", None, "string", "Override the key sequence for detaching a container"),
            b("interactive", Some('i'), "Attach container's STDIN"),
            v("checkpoint", None, "string", "Restore from this checkpoint"),
            v("checkpoint-dir", None, "string", "Use a custom checkpoint storage directory"),
        ]),
        "stop" | "restart" => {
            let (usage, about, aliases) = if name == "stop" {
                ("stop [OPTIONS] CONTAINER [CONTAINER...]", "Stop one or more running containers", "berth container stop, berth stop")
            } else {
                ("restart [OPTIONS] CONTAINER [CONTAINER...]", "Restart one or more containers", "berth container restart, berth restart")
            };
            cmd(usage, about, aliases, Min(1), vec![
                v("signal", Some('s'), "string", "Signal to send to the container"),
                v("timeout", Some('t'), "int", "Seconds to wait before killing the container"),
                flags::hidden(v("time", None, "int", "Seconds to wait before killing the container (deprecated: use --timeout)")),
            ])
        }
        "kill" => cmd("kill [OPTIONS] CONTAINER [CONTAINER...]", "Kill one or more running containers", "berth container kill, berth kill", Min(1), vec![v("signal", Some('s'), "string", "Signal to send to the container")]),
        "pause" => cmd("pause CONTAINER [CONTAINER...]", "Pause all processes within one or more containers", "berth container pause, berth pause", Min(1), vec![]),
        "unpause" => cmd("unpause CONTAINER [CONTAINER...]", "Unpause all processes within one or more containers", "berth container unpause, berth unpause", Min(1), vec![]),
        "rm" => cmd("rm [OPTIONS] CONTAINER [CONTAINER...]", "Remove one or more containers", "berth container rm, berth container remove, berth rm", Min(1), vec![
            b("force", Some('f'), "Force the removal of a running container (uses SIGKILL)"),
            b("link", Some('l'), "Remove the specified link"),
            b("volumes", Some('v'), "Remove anonymous volumes associated with the container"),
        ]),
        "ps" => cmd("ps [OPTIONS]", "List containers", "berth container ls, berth container list, berth container ps, berth ps", Args::None, vec![
            b("all", Some('a'), "Show all containers (default shows just running)"),
            filter_flag(),
            format_flag("Format output using a custom template:\n'table':            Print output in table format with column headers (default)\n'table TEMPLATE':   Print output in table format using the given Go template\n'json':             Print in JSON format\n'TEMPLATE':         Print output using the given Go template"),
            vd("last", Some('n'), "int", "-1", "Show n last created containers (includes all states)"),
            b("latest", Some('l'), "Show the latest created container (includes all states)"),
            b("no-trunc", None, "Don't truncate output"),
            b("quiet", Some('q'), "Only display container IDs"),
            b("size", Some('s'), "Display total file sizes"),
        ]),
        "logs" => cmd("logs [OPTIONS] CONTAINER", "Fetch the logs of a container", "berth container logs, berth logs", Exact(1), vec![
            b("details", None, "Show extra details provided to logs"),
            b("follow", Some('f'), "Follow log output"),
            v("since", None, "string", "Show logs since timestamp (e.g. \"2013-01-02T13:23:37Z\") or relative (e.g. \"42m\" for 42 minutes)"),
            vd("tail", Some('n'), "string", "all", "Number of lines to show from the end of the logs"),
            b("timestamps", Some('t'), "Show timestamps"),
            v("until", None, "string", "Show logs before a timestamp (e.g. \"2013-01-02T13:23:37Z\") or relative (e.g. \"42m\" for 42 minutes)"),
        ]),
        "wait" => cmd("wait CONTAINER [CONTAINER...]", "Block until one or more containers stop, then print their exit codes", "berth container wait, berth wait", Min(1), vec![]),
        "top" => Command { spec: Spec { usage: "top CONTAINER [ps OPTIONS]", about: "Display the running processes of a container", aliases: "berth container top, berth top", flags: vec![], stop_at_positional: true, no_short_help: false }, args: Min(1) },
        "inspect" => cmd("inspect [OPTIONS] NAME|ID [NAME|ID...]", "Return low-level information on Docker objects", "", Min(1), vec![
            v("format", Some('f'), "string", "Format output using a custom template"),
            b("size", Some('s'), "Display total file sizes if the type is container"),
            v("type", None, "string", "Only inspect objects of the given type"),
        ]),
        "exec" => Command {
            spec: Spec {
                usage: "exec [OPTIONS] CONTAINER COMMAND [ARG...]",
                about: "Execute a command in a running container",
                aliases: "berth container exec, berth exec",
                flags: vec![
                    b("detach", Some('d'), "Detached mode: run command in the background"),
                    v("detach-keys", None, "string", "Override the key sequence for detaching a container"),
                    l("env", Some('e'), "Set environment variables"),
                    l("env-file", None, "Read in a file of environment variables"),
                    b("interactive", Some('i'), "Keep STDIN open even if not attached"),
                    b("privileged", None, "Give extended privileges to the command"),
                    b("tty", Some('t'), "Allocate a pseudo-TTY"),
                    v("user", Some('u'), "string", "Username or UID (format: \"<name|uid>[:<group|gid>]\")"),
                    v("workdir", Some('w'), "string", "Working directory inside the container"),
                ],
                stop_at_positional: true,
                no_short_help: false,
            },
            args: Min(2),
        },
        "attach" => cmd("attach [OPTIONS] CONTAINER", "Attach local standard input, output, and error streams to a running container", "berth container attach, berth attach", Exact(1), vec![
            v("detach-keys", None, "string", "Override the key sequence for detaching a container"),
            b("no-stdin", None, "Do not attach STDIN"),
            default_true(b("sig-proxy", None, "Proxy all received signals to the process")),
        ]),
        "rename" => cmd("rename CONTAINER NEW_NAME", "Rename a container", "berth container rename, berth rename", Exact(2), vec![]),
        "update" => cmd("update [OPTIONS] CONTAINER [CONTAINER...]", "Update configuration of one or more containers", "berth container update, berth update", Min(1), vec![
            vd("blkio-weight", None, "uint16", "0", "Block IO (relative weight), between 10 and 1000, or 0 to disable (default 0)"),
            vd("cpu-period", None, "int", "0", "Limit CPU CFS (Completely Fair Scheduler) period"),
            vd("cpu-quota", None, "int", "0", "Limit CPU CFS (Completely Fair Scheduler) quota"),
            vd("cpu-rt-period", None, "int", "0", "Limit the CPU real-time period in microseconds"),
            vd("cpu-rt-runtime", None, "int", "0", "Limit the CPU real-time runtime in microseconds"),
            vd("cpu-shares", Some('c'), "int", "0", "CPU shares (relative weight)"),
            v("cpus", None, "decimal", "Number of CPUs"),
            v("cpuset-cpus", None, "string", "CPUs in which to allow execution (0-3, 0,1)"),
            v("cpuset-mems", None, "string", "MEMs in which to allow execution (0-3, 0,1)"),
            v("kernel-memory", None, "bytes", "Kernel memory limit (deprecated)"),
            v("memory", Some('m'), "bytes", "Memory limit"),
            v("memory-reservation", None, "bytes", "Memory soft limit"),
            v("memory-swap", None, "bytes", "Swap limit equal to memory plus swap: -1 to enable unlimited swap"),
            vd("pids-limit", None, "int", "0", "Tune container pids limit (set -1 for unlimited)"),
            v("restart", None, "string", "Restart policy to apply when a container exits"),
        ]),
        "port" => cmd("port CONTAINER [PRIVATE_PORT[/PROTO]]", "List port mappings or a specific mapping for the container", "berth container port, berth port", Range(1, 2), vec![]),
        "container prune" => cmd("container prune [OPTIONS]", "Remove all stopped containers", "", Args::None, vec![
            Flag { typ: "filter", ..l("filter", None, "Provide filter values (e.g. \"until=<timestamp>\")") },
            b("force", Some('f'), "Do not prompt for confirmation"),
        ]),
        "images" => cmd("images [OPTIONS] [REPOSITORY[:TAG]]", "List images", "berth image ls, berth image list, berth images", Range(0, 1), vec![
            b("all", Some('a'), "Show all images (default hides intermediate images)"),
            b("digests", None, "Show digests"),
            filter_flag(),
            format_flag("Format output using a custom template:\n'table':            Print output in table format with column headers (default)\n'table TEMPLATE':   Print output in table format using the given Go template\n'json':             Print in JSON format\n'TEMPLATE':         Print output using the given Go template"),
            b("no-trunc", None, "Don't truncate output"),
            b("quiet", Some('q'), "Only show image IDs"),
            b("tree", None, "List multi-platform images as a tree (EXPERIMENTAL)"),
        ]),
        "history" => cmd("history [OPTIONS] IMAGE", "Show the history of an image", "berth image history, berth history", Exact(1), vec![
            format_flag("Format output using a custom template:\n'table':            Print output in table format with column headers (default)\n'table TEMPLATE':   Print output in table format using the given Go template\n'json':             Print in JSON format\n'TEMPLATE':         Print output using the given Go template"),
            default_true(b("human", Some('H'), "Print sizes and dates in human readable format")),
            b("no-trunc", None, "Don't truncate output"),
            v("platform", None, "string", "Show history for the given platform. Formatted as \"os[/arch[/variant]]\" (e.g., \"linux/amd64\")"),
            b("quiet", Some('q'), "Only show image IDs"),
        ]),
        "rmi" => cmd("rmi [OPTIONS] IMAGE [IMAGE...]", "Remove one or more images", "berth image rm, berth image remove, berth rmi", Min(1), vec![
            b("force", Some('f'), "Force removal of the image"),
            b("no-prune", None, "Do not delete untagged parents"),
        ]),
        "tag" => cmd("tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]", "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE", "berth image tag, berth tag", Exact(2), vec![]),
        "save" => cmd("save [OPTIONS] IMAGE [IMAGE...]", "Save one or more images to a tar archive (streamed to STDOUT by default)", "berth image save, berth save", Min(1), vec![
            v("output", Some('o'), "string", "Write to a file, instead of STDOUT"),
            l("platform", None, "Save only the given platform(s)"),
        ]),
        "load" => cmd("load [OPTIONS]", "Load an image from a tar archive or STDIN", "berth image load, berth load", Args::None, vec![
            v("input", Some('i'), "string", "Read from tar archive file, instead of STDIN"),
            b("quiet", Some('q'), "Suppress the load output"),
            l("platform", None, "Load only the given platform(s)"),
        ]),
        "import" => cmd("import [OPTIONS] file|URL|- [REPOSITORY[:TAG]]", "Import the contents from a tarball to create a filesystem image", "berth image import, berth import", Range(1, 2), vec![
            l("change", Some('c'), "Apply Dockerfile instruction to the created image"),
            v("message", Some('m'), "string", "Set commit message for imported image"),
            v("platform", None, "string", "Set platform if server is multi-platform capable"),
        ]),
        "pull" => cmd("pull [OPTIONS] NAME[:TAG|@DIGEST]", "Download an image from a registry", "berth image pull, berth pull", Exact(1), vec![
            b("all-tags", Some('a'), "Download all tagged images in the repository"),
            b("disable-content-trust", None, "Skip image verification"),
            v("platform", None, "string", "Set platform if server is multi-platform capable"),
            b("quiet", Some('q'), "Suppress verbose output"),
        ]),
        "push" => cmd("push [OPTIONS] NAME[:TAG]", "Upload an image to a registry", "berth image push, berth push", Exact(1), vec![
            b("all-tags", Some('a'), "Push all tags of an image to the repository"),
            b("disable-content-trust", None, "Skip image signing"),
            v("platform", None, "string", "Push a platform-specific manifest as a single-platform image to the registry."),
            b("quiet", Some('q'), "Suppress verbose output"),
        ]),
        "build" => cmd("build [OPTIONS] PATH | URL | -", "Build an image from a Dockerfile", "berth image build, berth build, berth builder build", Exact(1), vec![
            l("add-host", None, "Add a custom host-to-IP mapping (\"host:ip\")"),
            l("build-arg", None, "Set build-time variables"),
            v("cache-from", None, "strings", "Images to consider as cache sources"),
            v("cgroup-parent", None, "string", "Set the parent cgroup for the \"RUN\" instructions during build"),
            b("compress", None, "Compress the build context using gzip"),
            vd("cpu-period", None, "int", "0", "Limit the CPU CFS (Completely Fair Scheduler) period"),
            vd("cpu-quota", None, "int", "0", "Limit the CPU CFS (Completely Fair Scheduler) quota"),
            vd("cpu-shares", Some('c'), "int", "0", "CPU shares (relative weight)"),
            v("cpuset-cpus", None, "string", "CPUs in which to allow execution (0-3, 0,1)"),
            v("cpuset-mems", None, "string", "MEMs in which to allow execution (0-3, 0,1)"),
            b("disable-content-trust", None, "Skip image verification"),
            v("file", Some('f'), "string", "Name of the Dockerfile (Default is \"PATH/Dockerfile\")"),
            b("force-rm", None, "Always remove intermediate containers"),
            v("iidfile", None, "string", "Write the image ID to the file"),
            v("isolation", None, "string", "Container isolation technology"),
            l("label", None, "Set metadata for an image"),
            v("memory", Some('m'), "bytes", "Memory limit"),
            v("memory-swap", None, "bytes", "Swap limit equal to memory plus swap: -1 to enable unlimited swap"),
            vd("network", None, "string", "default", "Set the networking mode for the RUN instructions during build"),
            b("no-cache", None, "Do not use cache when building the image"),
            v("platform", None, "string", "Set platform if server is multi-platform capable"),
            b("pull", None, "Always attempt to pull a newer version of the image"),
            b("quiet", Some('q'), "Suppress the build output and print image ID on success"),
            default_true(b("rm", None, "Remove intermediate containers after a successful build")),
            l("security-opt", None, "Security options"),
            v("shm-size", None, "bytes", "Size of \"/dev/shm\""),
            b("squash", None, "Squash newly built layers into a single new layer"),
            l("tag", Some('t'), "Name and optionally a tag in the \"name:tag\" format"),
            v("target", None, "string", "Set the target build stage to build."),
            l("ulimit", None, "Ulimit options"),
        ]),
        "version" => cmd("version [OPTIONS]", "Show the Docker version information", "", Args::None, vec![format_flag("Format output using a custom template:\n'json':             Print in JSON format\n'TEMPLATE':         Print output using the given Go template")]),
        "info" => cmd("info [OPTIONS]", "Display system-wide information", "berth system info, berth info", Args::None, vec![format_flag("Format output using a custom template:\n'json':             Print in JSON format\n'TEMPLATE':         Print output using the given Go template")]),
        "volume create" => cmd("create [OPTIONS] [VOLUME]", "Create a volume", "", Range(0, 1), vec![
            vd("driver", Some('d'), "string", "local", "Specify volume driver name"),
            l("label", None, "Set metadata for a volume"),
            Flag { typ: "map", default: "map[]", ..l("opt", Some('o'), "Set driver specific options") },
            flags::hidden(v("name", None, "string", "Specify volume name")),
        ]),
        "volume ls" => cmd("ls [OPTIONS]", "List volumes", "berth volume ls, berth volume list", Args::None, vec![
            Flag { typ: "filter", ..l("filter", Some('f'), "Provide filter values (e.g. \"dangling=true\")") },
            format_flag(LIST_FORMAT_HELP),
            b("quiet", Some('q'), "Only display volume names"),
            flags::hidden(b("cluster", None, "Display only cluster volumes, and use cluster volume list formatting")),
        ]),
        "volume inspect" => cmd("inspect [OPTIONS] VOLUME [VOLUME...]", "Display detailed information on one or more volumes", "", Min(1), vec![
            v("format", Some('f'), "string", INSPECT_FORMAT_HELP),
        ]),
        "volume rm" => cmd("rm [OPTIONS] VOLUME [VOLUME...]", "Remove one or more volumes. You cannot remove a volume that is in use by a container.", "berth volume rm, berth volume remove", Min(1), vec![
            b("force", Some('f'), "Force the removal of one or more volumes"),
        ]),
        "volume prune" => cmd("prune [OPTIONS]", "Remove unused local volumes", "", Args::None, vec![
            b("all", Some('a'), "Remove all unused volumes, not just anonymous ones"),
            Flag { typ: "filter", ..l("filter", None, "Provide filter values (e.g. \"label=<label>\")") },
            b("force", Some('f'), "Do not prompt for confirmation"),
        ]),
        "network create" => cmd("create [OPTIONS] NETWORK", "Create a network", "", Exact(1), vec![
            b("attachable", None, "Enable manual container attachment"),
            Flag { typ: "map", default: "map[]", ..l("aux-address", None, "Auxiliary IPv4 or IPv6 addresses used by Network driver") },
            v("config-from", None, "string", "The network from which to copy the configuration"),
            b("config-only", None, "Create a configuration only network"),
            vd("driver", Some('d'), "string", "bridge", "Driver to manage the Network"),
            Flag { typ: "strings", ..l("gateway", None, "IPv4 or IPv6 Gateway for the master subnet") },
            b("ingress", None, "Create swarm routing-mesh network"),
            b("internal", None, "Restrict external access to the network"),
            Flag { typ: "strings", ..l("ip-range", None, "Allocate container ip from a sub-range") },
            vd("ipam-driver", None, "string", "default", "IP Address Management Driver"),
            Flag { typ: "map", default: "map[]", ..l("ipam-opt", None, "Set IPAM driver specific options") },
            default_true(b("ipv4", None, "Enable or disable IPv4 address assignment")),
            b("ipv6", None, "Enable or disable IPv6 address assignment"),
            l("label", None, "Set metadata on a network"),
            Flag { typ: "map", default: "map[]", ..l("opt", Some('o'), "Set driver specific options") },
            v("scope", None, "string", "Control the network's scope"),
            Flag { typ: "strings", ..l("subnet", None, "Subnet in CIDR format that represents a network segment") },
        ]),
        "network ls" => cmd("ls [OPTIONS]", "List networks", "berth network ls, berth network list", Args::None, vec![
            Flag { typ: "filter", ..l("filter", Some('f'), "Provide filter values (e.g. \"driver=bridge\")") },
            format_flag(LIST_FORMAT_HELP),
            b("no-trunc", None, "Do not truncate the output"),
            b("quiet", Some('q'), "Only display network IDs"),
        ]),
        "network inspect" => cmd("inspect [OPTIONS] NETWORK [NETWORK...]", "Display detailed information on one or more networks", "", Min(1), vec![
            v("format", Some('f'), "string", INSPECT_FORMAT_HELP),
            b("verbose", Some('v'), "Verbose output for diagnostics"),
        ]),
        "network rm" => cmd("rm NETWORK [NETWORK...]", "Remove one or more networks", "berth network rm, berth network remove", Min(1), vec![
            b("force", Some('f'), "Do not error if the network does not exist"),
        ]),
        "network prune" => cmd("prune [OPTIONS]", "Remove all unused networks", "", Args::None, vec![
            Flag { typ: "filter", ..l("filter", None, "Provide filter values (e.g. \"until=<timestamp>\")") },
            b("force", Some('f'), "Do not prompt for confirmation"),
        ]),
        "network connect" => cmd("connect [OPTIONS] NETWORK CONTAINER", "Connect a container to a network", "", Exact(2), vec![
            Flag { typ: "strings", ..l("alias", None, "Add network-scoped alias for the container") },
            Flag { typ: "strings", ..l("driver-opt", None, "driver options for the network") },
            v("gw-priority", None, "int", "Highest gw-priority provides the default gateway. Accepts positive and negative values."),
            v("ip", None, "string", "IPv4 address (e.g., \"172.30.100.104\")"),
            v("ip6", None, "string", "IPv6 address (e.g., \"2001:db8::33\")"),
            l("link", None, "Add link to another container"),
            Flag { typ: "strings", ..l("link-local-ip", None, "Add a link-local address for the container") },
        ]),
        "network disconnect" => cmd("disconnect [OPTIONS] NETWORK CONTAINER", "Disconnect a container from a network", "", Exact(2), vec![
            b("force", Some('f'), "Force the container to disconnect from a network"),
        ]),
        "login" => cmd("login [OPTIONS] [SERVER]", "Authenticate to a registry.\nDefaults to Docker Hub if no server is specified.", "", Range(0, 1), vec![
            v("password", Some('p'), "string", "Password or Personal Access Token (PAT)"),
            b("password-stdin", None, "Take the Password or Personal Access Token (PAT) from stdin"),
            v("username", Some('u'), "string", "Username"),
        ]),
        "logout" => cmd("logout [SERVER]", "Log out from a registry.\nIf no server is specified, the default is defined by the daemon.", "", Range(0, 1), vec![]),
        "search" => cmd("search [OPTIONS] TERM", "Search Docker Hub for images", "", Exact(1), vec![
            Flag { typ: "filter", ..l("filter", Some('f'), "Filter output based on conditions provided") },
            v("format", None, "string", "Pretty-print search using a Go template"),
            v("limit", None, "int", "Max number of search results"),
            b("no-trunc", None, "Don't truncate output"),
        ]),
        "cp" => cmd("cp [OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n\tberth cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH", "Copy files/folders between a container and the local filesystem\n\nUse '-' as the source to read a tar archive from stdin\nand extract it to a directory destination in a container.\nUse '-' as the destination to stream a tar archive of a\ncontainer source to stdout.", "berth container cp, berth cp", Exact(2), vec![
            b("archive", Some('a'), "Archive mode (copy all uid/gid information)"),
            b("follow-link", Some('L'), "Always follow symbol link in SRC_PATH"),
            b("quiet", Some('q'), "Suppress progress output during copy. Progress output is automatically suppressed if no terminal is attached"),
        ]),
        "commit" => cmd("commit [OPTIONS] CONTAINER [REPOSITORY[:TAG]]", "Create a new image from a container's changes", "berth container commit, berth commit", Range(1, 2), vec![
            v("author", Some('a'), "string", "Author (e.g., \"John Hannibal Smith <hannibal@a-team.com>\")"),
            l("change", Some('c'), "Apply Dockerfile instruction to the created image"),
            v("message", Some('m'), "string", "Commit message"),
            default_true(b("pause", Some('p'), "Pause container during commit")),
        ]),
        "diff" => cmd("diff CONTAINER", "Inspect changes to files or directories on a container's filesystem", "berth container diff, berth diff", Exact(1), vec![]),
        "export" => cmd("export [OPTIONS] CONTAINER", "Export a container's filesystem as a tar archive", "berth container export, berth export", Exact(1), vec![
            v("output", Some('o'), "string", "Write to a file, instead of STDOUT"),
        ]),
        "stats" => cmd("stats [OPTIONS] [CONTAINER...]", "Display a live stream of container(s) resource usage statistics", "berth container stats, berth stats", Min(0), vec![
            b("all", Some('a'), "Show all containers (default shows just running)"),
            format_flag("Format output using a custom template:\n'table':            Print output in table format with column headers (default)\n'table TEMPLATE':   Print output in table format using the given Go template\n'json':             Print in JSON format\n'TEMPLATE':         Print output using the given Go template.\nRefer to https://docs.docker.com/engine/cli/formatting/ for more information about formatting output with templates"),
            b("no-stream", None, "Disable streaming stats and only pull the first result"),
            b("no-trunc", None, "Do not truncate output"),
        ]),
        "events" => cmd("events [OPTIONS]", "Get real time events from the server", "berth system events, berth events", Args::None, vec![
            filter_flag(),
            format_flag("Format output using a custom template:\n'json':             Print in JSON format\n'TEMPLATE':         Print output using the given Go template.\nRefer to https://docs.docker.com/go/formatting/ for more information about formatting output with templates"),
            v("since", None, "string", "Show all events created since timestamp"),
            v("until", None, "string", "Stream events until this timestamp"),
        ]),
        "system df" => cmd("df [OPTIONS]", "Show berth disk usage", "", Args::None, vec![
            format_flag(LIST_FORMAT_HELP),
            b("verbose", Some('v'), "Show detailed information on space usage"),
        ]),
        "image prune" => cmd("prune [OPTIONS]", "Remove unused images", "", Args::None, vec![
            b("all", Some('a'), "Remove all unused images, not just dangling ones"),
            Flag { typ: "filter", ..l("filter", None, "Provide filter values (e.g. \"until=<timestamp>\")") },
            b("force", Some('f'), "Do not prompt for confirmation"),
        ]),
        _ => return Option::None,
    };
    Some(c)
}

/// Management command forms mapped to canonical commands (and the usage path shown).
fn resolve(cmd: &str, rest: &[String]) -> Option<(&'static str, String, usize)> {
    let sub = rest.first().map(String::as_str).unwrap_or("");
    let map = |group: &str| -> Option<&'static str> {
        match (group, sub) {
            ("container", "ls" | "ps" | "list") => Some("ps"),
            ("container", "rm" | "remove") => Some("rm"),
            ("container", "prune") => Some("container prune"),
            ("container", "inspect") => Some("container inspect"),
            ("container", s) => [
                "run", "create", "start", "stop", "restart", "kill", "pause", "unpause", "logs",
                "wait", "top", "exec", "attach", "rename", "update", "port", "cp", "commit",
                "diff", "export", "stats",
            ]
            .into_iter()
            .find(|c| *c == s),
            ("image", "ls" | "list") => Some("images"),
            ("image", "rm" | "remove") => Some("rmi"),
            ("image", "inspect") => Some("image inspect"),
            ("image", "prune") => Some("image prune"),
            ("image", s) => [
                "tag", "save", "load", "import", "pull", "push", "history", "build",
            ]
            .into_iter()
            .find(|c| *c == s),
            ("system", "info") => Some("info"),
            ("builder", "build") => Some("build"),
            ("system", "df") => Some("system df"),
            ("system", "events") => Some("events"),
            ("volume", "ls" | "list") => Some("volume ls"),
            ("volume", "rm" | "remove") => Some("volume rm"),
            ("volume", "create") => Some("volume create"),
            ("volume", "inspect") => Some("volume inspect"),
            ("volume", "prune") => Some("volume prune"),
            ("network", "ls" | "list") => Some("network ls"),
            ("network", "rm" | "remove") => Some("network rm"),
            ("network", "create") => Some("network create"),
            ("network", "inspect") => Some("network inspect"),
            ("network", "prune") => Some("network prune"),
            ("network", "connect") => Some("network connect"),
            ("network", "disconnect") => Some("network disconnect"),
            _ => None,
        }
    };
    match cmd {
        g if GROUPS.iter().any(|(n, _, _)| *n == g) => {
            map(cmd).map(|c| (c, format!("{cmd} {sub}"), 1))
        }
        c => {
            let canon = SUMMARY.iter().map(|(n, _)| *n).find(|n| *n == c)?;
            Some((canon, c.to_string(), 0))
        }
    }
}

fn usage_error(path: &str, usage: &str, msg: &str) -> anyhow::Error {
    StatusError::exit(
        125,
        format!(
            "{msg}\n\nUsage:  berth {}\n\nRun 'berth {path} --help' for more information",
            usage_with_path(path, usage)
        ),
    )
}

fn usage_with_path(path: &str, usage: &str) -> String {
    // `container ls [OPTIONS]` for management forms, `ps [OPTIONS]` otherwise.
    let rest = usage.split_once(' ').map(|x| x.1).unwrap_or("");
    if rest.is_empty() {
        path.to_string()
    } else {
        format!("{path} {rest}")
    }
}

fn args_error(path: &str, usage: &str, rule: Args, n: usize) -> Option<anyhow::Error> {
    let plural = |k: usize| if k == 1 { "argument" } else { "arguments" };
    // cobra's validators word these differently: RequiresMinArgs says "See", others "Run".
    let (msg, verb) = match rule {
        Args::None if n > 0 => ("accepts no arguments".to_string(), "Run"),
        Args::Exact(k) if n != k => (format!("requires {k} {}", plural(k)), "Run"),
        Args::Min(k) if n < k => (format!("requires at least {k} {}", plural(k)), "See"),
        Args::Range(a, b) if n < a || n > b => (
            format!("requires at least {a} and at most {b} {}", plural(b)),
            "Run",
        ),
        _ => return None,
    };
    Some(StatusError::exit(1, format!("berth: 'berth {path}' {msg}\n\nUsage:  berth {}\n\n{verb} 'berth {path} --help' for more information", usage_with_path(path, usage))))
}

/// Management commands: name, summary, and subcommands listed in their help.
/// A management command: name, summary, and its subcommands with their summaries.
pub type Group = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
);

pub const GROUPS: &[Group] = &[
    (
        "compose",
        "Define and run multi-container applications",
        &[],
    ),
    ("container", "Manage containers", &[]),
    ("image", "Manage images", &[]),
    ("system", "Manage berth", &[]),
    (
        "builder",
        "Manage builds",
        &[("build", "Build an image from a Dockerfile")],
    ),
    (
        "volume",
        "Manage volumes",
        &[
            ("create", "Create a volume"),
            (
                "inspect",
                "Display detailed information on one or more volumes",
            ),
            ("ls", "List volumes"),
            ("prune", "Remove unused local volumes"),
            ("rm", "Remove one or more volumes"),
        ],
    ),
    (
        "network",
        "Manage networks",
        &[
            ("connect", "Connect a container to a network"),
            ("create", "Create a network"),
            ("disconnect", "Disconnect a container from a network"),
            (
                "inspect",
                "Display detailed information on one or more networks",
            ),
            ("ls", "List networks"),
            ("prune", "Remove all unused networks"),
            ("rm", "Remove one or more networks"),
        ],
    ),
];

fn group_help(cmd: &str, about: &str, subs: &[(&str, &str)]) -> String {
    let mut s = format!("Usage:  berth {cmd} COMMAND\n\n{about}\n");
    if !subs.is_empty() {
        s.push_str("\nCommands:\n");
        for (n, a) in subs {
            s.push_str(&format!("  {n:<11} {a}\n"));
        }
    }
    s.push_str(&format!(
        "\nRun 'berth {cmd} COMMAND --help' for more information on a command."
    ));
    s
}

/// Parses a command's flags and runs it.
pub async fn dispatch(mut ctx: Ctx, cmd: &str, rest: Vec<String>) -> anyhow::Result<()> {
    if cmd == "compose" {
        return compose::compose(&mut ctx, rest).await;
    }
    let group = GROUPS.iter().find(|(n, _, _)| *n == cmd);
    if let Some((_, about, subs)) = group {
        // Bare `berth volume` prints its help on stderr, `--help` on stdout.
        match rest.first().map(String::as_str) {
            None => {
                eprintln!("{}", group_help(cmd, about, subs));
                return Ok(());
            }
            Some("--help" | "-h") => {
                println!("{}", group_help(cmd, about, subs));
                return Ok(());
            }
            _ => {}
        }
    }
    let Some((canon, path, skip)) = resolve(cmd, &rest) else {
        let shown = if group.is_some() {
            format!("berth {cmd} {}", rest[0])
        } else {
            format!("berth {cmd}")
        };
        let usage = if group.is_some() {
            format!("\n\nUsage:  berth {cmd}\n\nRun 'berth {cmd} --help'")
        } else {
            "\n\nRun 'berth --help'".to_string()
        };
        return Err(StatusError::exit(
            1,
            format!("berth: unknown command: {shown}{usage} for more information"),
        ));
    };
    let argv = &rest[skip..];
    let lookup = match canon {
        "container inspect" | "image inspect" => "inspect",
        c => c,
    };
    let command = command(lookup).expect("every resolved command has a spec");
    let mut spec = command.spec;
    if canon == "container inspect" || canon == "image inspect" {
        spec.flags
            .retain(|f| f.long != "type" && (canon == "container inspect" || f.long != "size"));
        spec.usage = if canon == "container inspect" {
            "inspect [OPTIONS] CONTAINER [CONTAINER...]"
        } else {
            "inspect [OPTIONS] IMAGE [IMAGE...]"
        };
    }
    let mut p = match flags::parse(&spec, argv) {
        Ok(p) => p,
        Err(FlagError::Help) => {
            print!(
                "{}",
                flags::help(
                    "berth",
                    &Spec {
                        usage: Box::leak(usage_with_path(&path, spec.usage).into_boxed_str()),
                        ..spec
                    }
                )
            );
            return Ok(());
        }
        Err(FlagError::Message(m)) => return Err(usage_error(&path, spec.usage, &m)),
    };
    // run/create/exec stop parsing at the first positional; a leading `-x` there is a flag
    // that pflag would have rejected.
    if let Some(e) = args_error(&path, spec.usage, command.args, p.args.len()) {
        return Err(e);
    }
    match canon {
        "container inspect" => p.set("type", "container"),
        "image inspect" => p.set("type", "image"),
        _ => {}
    }
    let ucanon = canon;
    let spec_ref = &spec;
    let res = match ucanon {
        "run" => container::run(&mut ctx, &p, spec_ref).await,
        "create" => container::create(&mut ctx, &p, spec_ref).await,
        "start" => container::start(&mut ctx, &p).await,
        "stop" | "restart" => container::stop_restart(&mut ctx, &p, ucanon == "restart").await,
        "kill" => container::kill(&mut ctx, &p).await,
        "pause" | "unpause" => container::pause(&mut ctx, &p, ucanon).await,
        "rm" => container::rm(&mut ctx, &p).await,
        "wait" => container::wait(&mut ctx, &p).await,
        "rename" => container::rename(&mut ctx, &p).await,
        "update" => container::update(&mut ctx, &p, spec_ref).await,
        "port" => container::port(&mut ctx, &p).await,
        "top" => container::top(&mut ctx, &p).await,
        "logs" => container::logs(&mut ctx, &p).await,
        "container prune" => container::prune(&mut ctx, &p).await,
        "attach" => exec::attach(&mut ctx, &p).await,
        "exec" => exec::exec(&mut ctx, &p).await,
        "ps" => list::ps(&mut ctx, &p).await,
        "images" => list::images(&mut ctx, &p).await,
        "history" => list::history(&mut ctx, &p).await,
        "container inspect" | "image inspect" | "inspect" => inspect::inspect(&mut ctx, &p).await,
        "rmi" => image::rmi(&mut ctx, &p).await,
        "tag" => image::tag(&mut ctx, &p).await,
        "save" => image::save(&mut ctx, &p).await,
        "load" => image::load(&mut ctx, &p).await,
        "import" => image::import(&mut ctx, &p).await,
        "build" => build::build(&mut ctx, &p).await,
        "pull" => image::pull(&mut ctx, &p).await,
        "push" => image::push(&mut ctx, &p).await,
        "version" => system::version(&mut ctx, &p).await,
        "info" => system::info(&mut ctx, &p).await,
        "cp" => cp::cp(&mut ctx, &p).await,
        "commit" => changes::commit(&mut ctx, &p).await,
        "diff" => changes::diff(&mut ctx, &p).await,
        "export" => changes::export(&mut ctx, &p).await,
        "stats" => stats::stats(&mut ctx, &p).await,
        "events" => events::events(&mut ctx, &p).await,
        "system df" => system::df(&mut ctx, &p).await,
        "image prune" => image::prune(&mut ctx, &p).await,
        "login" => registry::login(&mut ctx, &p).await,
        "logout" => registry::logout(&mut ctx, &p).await,
        "search" => registry::search(&mut ctx, &p).await,
        "volume create" => volume::create(&mut ctx, &p).await,
        "volume ls" => volume::ls(&mut ctx, &p).await,
        "volume inspect" => volume::inspect_cmd(&mut ctx, &p).await,
        "volume rm" => volume::rm(&mut ctx, &p).await,
        "volume prune" => volume::prune(&mut ctx, &p).await,
        "network create" => network::create(&mut ctx, &p).await,
        "network ls" => network::ls(&mut ctx, &p).await,
        "network inspect" => network::inspect_cmd(&mut ctx, &p).await,
        "network rm" => network::rm(&mut ctx, &p).await,
        "network prune" => network::prune(&mut ctx, &p).await,
        "network connect" => network::connect(&mut ctx, &p).await,
        "network disconnect" => network::disconnect(&mut ctx, &p).await,
        other => Err(anyhow::anyhow!("berth: '{other}' is not a berth command")),
    };
    // pflag-style value errors found while building requests print with usage.
    match res {
        Err(e) if e.downcast_ref::<crate::opts::InvalidArgument>().is_some() => {
            Err(usage_error(&path, spec.usage, &e.to_string()))
        }
        other => other,
    }
}

/// Runs `f` for every argument, printing results, then fails with every error at once
/// (docker prints each error on its own line and exits 1).
pub async fn for_each<F, Fut>(names: &[String], mut f: F) -> anyhow::Result<()>
where
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Option<String>>>,
{
    let mut errs = Vec::new();
    for n in names {
        match f(n.clone()).await {
            Ok(Some(out)) => println!("{out}"),
            Ok(None) => {}
            Err(e) => {
                if let Some(ce) = e.downcast_ref::<ClientError>() {
                    if matches!(
                        ce,
                        ClientError::Connect { .. } | ClientError::Permission { .. }
                    ) {
                        return Err(e);
                    }
                }
                errs.push(format!("{e:#}"));
            }
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(StatusError::exit(1, errs.join("\n")))
    }
}

/// The `--format` help of list commands.
pub const LIST_FORMAT_HELP: &str = "Format output using a custom template:\n'table':            Print output in table format with column headers (default)\n'table TEMPLATE':   Print output in table format using the given Go template\n'json':             Print in JSON format\n'TEMPLATE':         Print output using the given Go template.\nRefer to https://docs.docker.com/go/formatting/ for more information about formatting output with templates";

/// The `--format` help of inspect commands.
pub const INSPECT_FORMAT_HELP: &str = "Format output using a custom template:\n'json':             Print in JSON format\n'TEMPLATE':         Print output using the given Go template.\nRefer to https://docs.docker.com/go/formatting/ for more information about formatting output with templates";

/// The format a list command renders: docker turns `table` (the default) into the command's
/// table or, with `-q`, its quiet format; `raw` into its raw format; anything else is used
/// as given.
pub fn list_format(user: &str, quiet: bool, table: &str, quiet_fmt: &str, raw: &str) -> String {
    match user {
        "" | "table" if quiet => quiet_fmt.to_string(),
        "" | "table" => table.to_string(),
        "raw" => raw.to_string(),
        f => f.to_string(),
    }
}

/// docker's `PromptForConfirmation`: prints `message [y/N] ` on stdout and reads one line;
/// only `y`/`Y` confirms.
pub fn confirm(message: &str) -> bool {
    use std::io::Write as _;
    print!("{message} [y/N] ");
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
    line.trim().eq_ignore_ascii_case("y")
}

/// `sortorder.NaturalLess`, which docker uses to sort volumes and networks by name: digit
/// runs compare as numbers and sort before other bytes.
pub fn natural_less(a: &str, b: &str) -> bool {
    let (s1, s2) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < s1.len() && j < s2.len() {
        let (c1, c2) = (s1[i], s2[j]);
        let (d1, d2) = (c1.is_ascii_digit(), c2.is_ascii_digit());
        if d1 != d2 {
            return d1;
        }
        if !d1 {
            if c1 != c2 {
                return c1 < c2;
            }
            i += 1;
            j += 1;
            continue;
        }
        while i < s1.len() && s1[i] == b'0' {
            i += 1;
        }
        while j < s2.len() && s2[j] == b'0' {
            j += 1;
        }
        let (nz1, nz2) = (i, j);
        while i < s1.len() && s1[i].is_ascii_digit() {
            i += 1;
        }
        while j < s2.len() && s2[j].is_ascii_digit() {
            j += 1;
        }
        if i - nz1 != j - nz2 {
            return i - nz1 < j - nz2;
        }
        if s1[nz1..i] != s2[nz2..j] {
            return s1[nz1..i] < s2[nz2..j];
        }
        if nz1 != nz2 {
            return nz1 < nz2;
        }
    }
    s1.len() < s2.len()
}

/// Sorts JSON objects by a string field with [`natural_less`].
pub fn sort_natural_by(items: &mut [serde_json::Value], field: &str) {
    items.sort_by(|a, b| {
        let (x, y) = (
            a[field].as_str().unwrap_or(""),
            b[field].as_str().unwrap_or(""),
        );
        if natural_less(x, y) {
            std::cmp::Ordering::Less
        } else if natural_less(y, x) {
            std::cmp::Ordering::Greater
        } else {
            std::cmp::Ordering::Equal
        }
    });
}

/// `--label k=v` values as the API's label map; `flag` names the flag in errors.
pub fn labels_map(values: &[String], flag: &str) -> anyhow::Result<serde_json::Value> {
    let mut m = serde_json::Map::new();
    for v in values {
        let (k, val) = v.split_once('=').unwrap_or((v, ""));
        if k.trim().is_empty() {
            return Err(crate::opts::InvalidArgument(format!(
                "invalid argument \"{v}\" for \"{flag}\" flag: invalid label '{v}': empty name"
            ))
            .into());
        }
        m.insert(k.to_string(), serde_json::Value::String(val.to_string()));
    }
    Ok(serde_json::Value::Object(m))
}

/// `-o k=v` map options (`opts.MapOpts`): a value without `=` maps to an empty string.
pub fn kv_options(values: &[String]) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    for v in values {
        let (k, val) = v.split_once('=').unwrap_or((v, ""));
        m.insert(k.to_string(), serde_json::Value::String(val.to_string()));
    }
    serde_json::Value::Object(m)
}

/// Labels as docker's formatters print them: `k=v` joined with commas (sorted here, where
/// Go's map order is random).
pub fn labels_string(labels: &serde_json::Value) -> String {
    let mut v: Vec<String> = labels
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
        .collect();
    v.sort();
    v.join(",")
}

/// The `Label` template function's data: the labels as a string map.
pub fn labels_value(labels: &serde_json::Value) -> gotmpl::Value {
    crate::template::map(labels.as_object().into_iter().flatten().map(|(k, v)| {
        (
            k.as_str(),
            crate::template::str_value(v.as_str().unwrap_or("")),
        )
    }))
}

/// Fails with docker's `exit status N` when some items failed and were already reported.
pub fn exit_status(code: i32) -> anyhow::Error {
    StatusError::exit(code, format!("exit status {code}"))
}

/// Path-escapes a name or id for use in a URL path.
pub fn esc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// `key=value` filters as the API's JSON filter map.
pub fn filters_json(filters: &[String]) -> anyhow::Result<Option<String>> {
    if filters.is_empty() {
        return Ok(None);
    }
    let mut m: std::collections::BTreeMap<String, std::collections::BTreeMap<String, bool>> =
        Default::default();
    for f in filters {
        let (k, v) = f
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("bad format of filter (expected name=value)"))?;
        m.entry(k.trim().to_lowercase())
            .or_default()
            .insert(v.to_string(), true);
    }
    Ok(Some(serde_json::to_string(&m)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn management_forms_map_to_the_same_commands() {
        let a = |s: &str| s.split_whitespace().map(str::to_string).collect::<Vec<_>>();
        assert_eq!(resolve("container", &a("ls -a")).unwrap().0, "ps");
        assert_eq!(resolve("container", &a("list")).unwrap().0, "ps");
        assert_eq!(resolve("image", &a("rm x")).unwrap().0, "rmi");
        assert_eq!(resolve("image", &a("ls")).unwrap().0, "images");
        assert_eq!(
            resolve("container", &a("prune")).unwrap().0,
            "container prune"
        );
        assert_eq!(resolve("ps", &[]).unwrap().0, "ps");
        assert!(resolve("frob", &[]).is_none());
        for (name, _) in SUMMARY {
            assert!(command(name).is_some(), "{name} has a spec");
        }
    }

    #[test]
    fn argument_count_errors_read_like_cobra() {
        let e = args_error("rename", "rename CONTAINER NEW_NAME", Args::Exact(2), 1).unwrap();
        assert_eq!(e.to_string(), "berth: 'berth rename' requires 2 arguments\n\nUsage:  berth rename CONTAINER NEW_NAME\n\nRun 'berth rename --help' for more information");
        let e = args_error(
            "run",
            "run [OPTIONS] IMAGE [COMMAND] [ARG...]",
            Args::Min(1),
            0,
        )
        .unwrap();
        assert!(e
            .to_string()
            .starts_with("berth: 'berth run' requires at least 1 argument\n"));
        assert!(args_error("ps", "ps [OPTIONS]", Args::None, 0).is_none());
    }

    #[test]
    fn filters_become_the_api_filter_map() {
        let f = filters_json(&["status=exited".into(), "label=a=b".into()])
            .unwrap()
            .unwrap();
        assert_eq!(f, r#"{"label":{"a=b":true},"status":{"exited":true}}"#);
        assert!(filters_json(&["bad".into()]).is_err());
    }
}
