//! What each router needs from the engine: one small trait per router (STYLE: narrow
//! interfaces). [`EngineBackend`] implements them over `berth_engine::Engine`; handler tests
//! implement only the methods they exercise (the rest answer "not implemented").

use berth_core::container::Container;
use berth_core::event::Event;
use berth_core::filters::Filters;
use berth_core::image::Image;
use berth_core::network::{EndpointRequest, Network};
use berth_core::volume::Volume;
use berth_core::{Error, Result};
use berth_engine::build::{BuildMessage, BuildRequest};
use berth_engine::containers::archive::PathStat;
use berth_engine::containers::attach::AttachOptions;
use berth_engine::containers::commit::CommitContainer;
use berth_engine::containers::exec::{ExecConfig, ExecInstance};
use berth_engine::containers::ops::TopResult;
use berth_engine::containers::remove::RemoveOptions;
use berth_engine::containers::wait::WaitResult;
use berth_engine::containers::{
    AttachStreams, ContainerListing, CreateContainer, ListContainers, LogLine, LogsOptions,
    UpdateContainer, WaitCondition,
};
use berth_engine::images::list::ImageListing;
use berth_engine::images::{HistoryRow, ImportImage, ListImages, RemovedImage};
use berth_engine::networks::{CreateNetwork, NetworkMember};
use berth_engine::system::{DiskUsage, SystemFacts};
use berth_engine::volumes::CreateVolume;
use berth_engine::Engine;
use std::collections::BTreeMap;
use std::future::Future;
use std::io::Read;
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::{broadcast, mpsc};

fn unsupported<T>(what: &str) -> Result<T> {
    Err(Error::not_implemented(format!(
        "{what} is not implemented by this backend"
    )))
}

pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// A container for inspect: the record, its sizes (with `size=1`) and `GraphDriver.Data`.
pub type Inspected = (Arc<Container>, Option<(i64, i64)>, BTreeMap<String, String>);

/// Writes an image archive (`docker save`) on a blocking thread.
pub type ArchiveWriter = berth_engine::ArchiveJob;

pub trait ContainerBackend: Send + Sync + 'static {
    fn create(
        &self,
        _req: CreateContainer,
    ) -> impl Future<Output = Result<(String, Vec<String>)>> + Send {
        async { unsupported("create") }
    }
    fn list(&self, _req: &ListContainers) -> Result<Vec<ContainerListing>> {
        unsupported("list")
    }
    fn inspect(&self, _name: &str, _size: bool) -> Result<Inspected> {
        unsupported("inspect")
    }
    /// The image name to show for a container in `ps` (its config's, or the id).
    fn image_display_name(&self, c: &Container) -> String {
        c.config.image.clone()
    }
    fn start(&self, _name: &str) -> impl Future<Output = Result<()>> + Send {
        async { unsupported("start") }
    }
    fn stop(
        &self,
        _name: &str,
        _t: Option<i64>,
        _sig: Option<String>,
    ) -> impl Future<Output = Result<()>> + Send {
        async { unsupported("stop") }
    }
    fn restart(
        &self,
        _name: &str,
        _t: Option<i64>,
        _sig: Option<String>,
    ) -> impl Future<Output = Result<()>> + Send {
        async { unsupported("restart") }
    }
    fn kill(&self, _name: &str, _sig: Option<String>) -> impl Future<Output = Result<()>> + Send {
        async { unsupported("kill") }
    }
    fn pause(&self, _name: &str) -> impl Future<Output = Result<()>> + Send {
        async { unsupported("pause") }
    }
    fn unpause(&self, _name: &str) -> impl Future<Output = Result<()>> + Send {
        async { unsupported("unpause") }
    }
    fn wait(&self, _name: &str, _cond: WaitCondition) -> Result<BoxFuture<WaitResult>> {
        unsupported("wait")
    }
    fn remove(&self, _name: &str, _opts: RemoveOptions) -> impl Future<Output = Result<()>> + Send {
        async { unsupported("remove") }
    }
    fn prune(&self, _filters: Filters) -> impl Future<Output = Result<(Vec<String>, u64)>> + Send {
        async { unsupported("prune") }
    }
    fn attach(
        &self,
        _name: &str,
        _opts: AttachOptions,
    ) -> impl Future<Output = Result<AttachStreams>> + Send {
        async { unsupported("attach") }
    }
    fn resize(&self, _name: &str, _h: u16, _w: u16) -> impl Future<Output = Result<()>> + Send {
        async { unsupported("resize") }
    }
    fn logs(&self, _name: &str, _opts: LogsOptions) -> Result<(bool, mpsc::Receiver<LogLine>)> {
        unsupported("logs")
    }
    fn top(&self, _name: &str, _args: &str) -> impl Future<Output = Result<TopResult>> + Send {
        async { unsupported("top") }
    }
    fn rename(&self, _name: &str, _new: &str) -> impl Future<Output = Result<()>> + Send {
        async { unsupported("rename") }
    }
    fn update(
        &self,
        _name: &str,
        _req: UpdateContainer,
    ) -> impl Future<Output = Result<Vec<String>>> + Send {
        async { unsupported("update") }
    }
    fn stat_path(&self, _name: &str, _path: &str) -> impl Future<Output = Result<PathStat>> + Send {
        async { unsupported("archive stat") }
    }
    fn read_path(
        &self,
        _name: &str,
        _path: &str,
    ) -> impl Future<Output = Result<(PathStat, ArchiveWriter)>> + Send {
        async { unsupported("archive get") }
    }
    fn write_path(
        &self,
        _name: &str,
        _path: &str,
        _tar: Box<dyn Read + Send>,
        _copy_uid_gid: bool,
    ) -> impl Future<Output = Result<()>> + Send {
        async { unsupported("archive put") }
    }
    /// `write_path` with files' content passed as descriptors on a local socket.
    fn write_path_fds(
        &self,
        _name: &str,
        _path: &str,
        _sock: std::os::unix::net::UnixStream,
        _prefix: Vec<u8>,
        _copy_uid_gid: bool,
    ) -> impl Future<Output = Result<()>> + Send {
        async { unsupported("archive put with descriptors") }
    }
    fn export(&self, _name: &str) -> impl Future<Output = Result<ArchiveWriter>> + Send {
        async { unsupported("export") }
    }
    fn changes(&self, _name: &str) -> impl Future<Output = Result<Vec<(u8, String)>>> + Send {
        async { unsupported("changes") }
    }
    fn commit(&self, _req: CommitContainer) -> impl Future<Output = Result<String>> + Send {
        async { unsupported("commit") }
    }
}

pub trait VolumeBackend: Send + Sync + 'static {
    fn create_volume(&self, _req: CreateVolume) -> Result<Volume> {
        unsupported("volume create")
    }
    /// The volume and the number of containers using it.
    fn volume(&self, _name: &str) -> Result<(Volume, i64)> {
        unsupported("volume inspect")
    }
    fn list_volumes(&self, _f: &Filters) -> Result<Vec<Volume>> {
        unsupported("volume list")
    }
    fn remove_volume(&self, _name: &str, _force: bool) -> Result<()> {
        unsupported("volume remove")
    }
    fn prune_volumes(&self, _f: &Filters) -> Result<(Vec<String>, u64)> {
        unsupported("volume prune")
    }
}

pub trait NetworkBackend: Send + Sync + 'static {
    fn create_network(&self, _req: CreateNetwork) -> impl Future<Output = Result<Network>> + Send {
        async { unsupported("network create") }
    }
    /// The network and its containers' endpoints.
    fn network(&self, _name: &str) -> Result<(Network, Vec<NetworkMember>)> {
        unsupported("network inspect")
    }
    fn list_networks(&self, _f: &Filters) -> Result<Vec<Network>> {
        unsupported("network list")
    }
    fn remove_network(&self, _name: &str) -> impl Future<Output = Result<()>> + Send {
        async { unsupported("network remove") }
    }
    fn prune_networks(&self, _f: Filters) -> impl Future<Output = Result<Vec<String>>> + Send {
        async { unsupported("network prune") }
    }
    fn connect_network(
        &self,
        _network: &str,
        _container: &str,
        _req: EndpointRequest,
    ) -> impl Future<Output = Result<()>> + Send {
        async { unsupported("network connect") }
    }
    fn disconnect_network(
        &self,
        _network: &str,
        _container: &str,
        _force: bool,
    ) -> impl Future<Output = Result<()>> + Send {
        async { unsupported("network disconnect") }
    }
}

pub trait ExecBackend: Send + Sync + 'static {
    fn create_exec(&self, _container: &str, _cfg: ExecConfig) -> Result<String> {
        unsupported("exec create")
    }
    fn inspect_exec(&self, _id: &str) -> Result<ExecInstance> {
        unsupported("exec inspect")
    }
    fn start_exec(
        &self,
        _id: &str,
        _detach: bool,
        _tty: Option<bool>,
    ) -> impl Future<Output = Result<Option<AttachStreams>>> + Send {
        async { unsupported("exec start") }
    }
    fn resize_exec(&self, _id: &str, _h: u16, _w: u16) -> impl Future<Output = Result<()>> + Send {
        async { unsupported("exec resize") }
    }
}

pub trait ImageBackend: Send + Sync + 'static {
    fn list_images(&self, _req: &ListImages) -> Result<Vec<ImageListing>> {
        unsupported("image list")
    }
    fn image(&self, _name: &str) -> Result<Image> {
        unsupported("image inspect")
    }
    fn image_graph_data(&self, _img: &Image) -> BTreeMap<String, String> {
        BTreeMap::new()
    }
    fn history(&self, _name: &str) -> Result<Vec<HistoryRow>> {
        unsupported("history")
    }
    fn tag(&self, _source: &str, _repo: &str, _tag: &str) -> Result<()> {
        unsupported("tag")
    }
    fn remove_image(
        &self,
        _name: &str,
        _force: bool,
        _prune: bool,
    ) -> impl Future<Output = Result<Vec<RemovedImage>>> + Send {
        async { unsupported("image remove") }
    }
    fn import(
        &self,
        _req: ImportImage,
        _tar: Box<dyn Read + Send>,
    ) -> impl Future<Output = Result<String>> + Send {
        async { unsupported("import") }
    }
    fn load(
        &self,
        _archive: Box<dyn Read + Send>,
    ) -> impl Future<Output = Result<Vec<String>>> + Send {
        async { unsupported("load") }
    }
    /// Checks the names at once, then writes the archive to `w` on a blocking thread.
    fn save(&self, _names: &[String]) -> Result<ArchiveWriter> {
        unsupported("save")
    }
}

pub trait BuildBackend: Send + Sync + 'static {
    /// Reads the context and starts the build; the build streams on the receiver.
    fn build(
        &self,
        _req: BuildRequest,
        _context: Box<dyn Read + Send>,
    ) -> impl Future<Output = Result<mpsc::Receiver<BuildMessage>>> + Send {
        async { unsupported("build") }
    }
}

pub trait SystemBackend: Send + Sync + 'static {
    fn facts(&self) -> SystemFacts;
    fn subscribe_events(&self) -> (Vec<Event>, broadcast::Receiver<Event>);
    fn disk_usage(&self) -> impl Future<Output = Result<DiskUsage>> + Send {
        async { unsupported("system df") }
    }
}

/// Everything the full router needs.
pub trait Backend:
    ContainerBackend
    + ExecBackend
    + ImageBackend
    + BuildBackend
    + VolumeBackend
    + NetworkBackend
    + SystemBackend
{
}
impl<
        T: ContainerBackend
            + ExecBackend
            + ImageBackend
            + BuildBackend
            + VolumeBackend
            + NetworkBackend
            + SystemBackend,
    > Backend for T
{
}

/// The real backend: the engine.
pub struct EngineBackend(pub Arc<Engine>);

impl ContainerBackend for EngineBackend {
    fn create(
        &self,
        req: CreateContainer,
    ) -> impl Future<Output = Result<(String, Vec<String>)>> + Send {
        let e = self.0.clone();
        async move { e.create_container(req).await }
    }
    fn list(&self, req: &ListContainers) -> Result<Vec<ContainerListing>> {
        self.0.list_containers(req)
    }
    fn inspect(&self, name: &str, size: bool) -> Result<Inspected> {
        let c = self.0.container(name)?.snapshot();
        let sizes = if size {
            Some(self.0.container_sizes(&c.id)?)
        } else {
            None
        };
        let graph = self.0.container_graph_data(&c);
        Ok((c, sizes, graph))
    }
    fn start(&self, name: &str) -> impl Future<Output = Result<()>> + Send {
        let (e, n) = (self.0.clone(), name.to_string());
        async move { e.start_container(&n).await }
    }
    fn stop(
        &self,
        name: &str,
        t: Option<i64>,
        sig: Option<String>,
    ) -> impl Future<Output = Result<()>> + Send {
        let (e, n) = (self.0.clone(), name.to_string());
        async move { e.stop_container(&n, t, sig).await }
    }
    fn restart(
        &self,
        name: &str,
        t: Option<i64>,
        sig: Option<String>,
    ) -> impl Future<Output = Result<()>> + Send {
        let (e, n) = (self.0.clone(), name.to_string());
        async move { e.restart_container(&n, t, sig).await }
    }
    fn kill(&self, name: &str, sig: Option<String>) -> impl Future<Output = Result<()>> + Send {
        let (e, n) = (self.0.clone(), name.to_string());
        async move { e.kill_container(&n, sig).await }
    }
    fn pause(&self, name: &str) -> impl Future<Output = Result<()>> + Send {
        let (e, n) = (self.0.clone(), name.to_string());
        async move { e.pause_container(&n).await }
    }
    fn unpause(&self, name: &str) -> impl Future<Output = Result<()>> + Send {
        let (e, n) = (self.0.clone(), name.to_string());
        async move { e.unpause_container(&n).await }
    }
    fn wait(&self, name: &str, cond: WaitCondition) -> Result<BoxFuture<WaitResult>> {
        Ok(Box::pin(self.0.wait_container(name, cond)?))
    }
    fn remove(&self, name: &str, opts: RemoveOptions) -> impl Future<Output = Result<()>> + Send {
        let (e, n) = (self.0.clone(), name.to_string());
        async move { e.remove_container(&n, opts).await }
    }
    fn prune(&self, filters: Filters) -> impl Future<Output = Result<(Vec<String>, u64)>> + Send {
        let e = self.0.clone();
        async move { e.prune_containers(&filters).await }
    }
    fn attach(
        &self,
        name: &str,
        opts: AttachOptions,
    ) -> impl Future<Output = Result<AttachStreams>> + Send {
        let (e, n) = (self.0.clone(), name.to_string());
        async move { e.attach_container(&n, opts).await }
    }
    fn resize(&self, name: &str, h: u16, w: u16) -> impl Future<Output = Result<()>> + Send {
        let (e, n) = (self.0.clone(), name.to_string());
        async move { e.resize_container(&n, h, w).await }
    }
    fn logs(&self, name: &str, opts: LogsOptions) -> Result<(bool, mpsc::Receiver<LogLine>)> {
        self.0.container_logs(name, opts)
    }
    fn top(&self, name: &str, args: &str) -> impl Future<Output = Result<TopResult>> + Send {
        let (e, n, a) = (self.0.clone(), name.to_string(), args.to_string());
        async move { e.top_container(&n, &a).await }
    }
    fn rename(&self, name: &str, new: &str) -> impl Future<Output = Result<()>> + Send {
        let (e, n, m) = (self.0.clone(), name.to_string(), new.to_string());
        async move { e.rename_container(&n, &m).await }
    }
    fn update(
        &self,
        name: &str,
        req: UpdateContainer,
    ) -> impl Future<Output = Result<Vec<String>>> + Send {
        let (e, n) = (self.0.clone(), name.to_string());
        async move { e.update_container(&n, req).await }
    }
    fn stat_path(&self, name: &str, path: &str) -> impl Future<Output = Result<PathStat>> + Send {
        let (e, n, p) = (self.0.clone(), name.to_string(), path.to_string());
        async move { e.stat_container_path(&n, &p).await }
    }
    fn read_path(
        &self,
        name: &str,
        path: &str,
    ) -> impl Future<Output = Result<(PathStat, ArchiveWriter)>> + Send {
        let (e, n, p) = (self.0.clone(), name.to_string(), path.to_string());
        async move { e.read_container_path(&n, &p).await }
    }
    fn write_path(
        &self,
        name: &str,
        path: &str,
        tar: Box<dyn Read + Send>,
        copy_uid_gid: bool,
    ) -> impl Future<Output = Result<()>> + Send {
        let (e, n, p) = (self.0.clone(), name.to_string(), path.to_string());
        async move { e.write_container_path(&n, &p, tar, copy_uid_gid).await }
    }
    fn write_path_fds(
        &self,
        name: &str,
        path: &str,
        sock: std::os::unix::net::UnixStream,
        prefix: Vec<u8>,
        copy_uid_gid: bool,
    ) -> impl Future<Output = Result<()>> + Send {
        let (e, n, p) = (self.0.clone(), name.to_string(), path.to_string());
        async move {
            e.write_container_path_fds(&n, &p, sock, prefix, copy_uid_gid)
                .await
        }
    }
    fn export(&self, name: &str) -> impl Future<Output = Result<ArchiveWriter>> + Send {
        let (e, n) = (self.0.clone(), name.to_string());
        async move { e.export_container(&n).await }
    }
    fn changes(&self, name: &str) -> impl Future<Output = Result<Vec<(u8, String)>>> + Send {
        let (e, n) = (self.0.clone(), name.to_string());
        async move { e.container_changes(&n).await }
    }
    fn commit(&self, req: CommitContainer) -> impl Future<Output = Result<String>> + Send {
        let e = self.0.clone();
        async move { e.commit_container(req).await }
    }
}

impl VolumeBackend for EngineBackend {
    fn create_volume(&self, req: CreateVolume) -> Result<Volume> {
        self.0.create_volume(req)
    }
    fn volume(&self, name: &str) -> Result<(Volume, i64)> {
        let v = self.0.volume(name)?;
        Ok((v, self.0.volume_users(name).len() as i64))
    }
    fn list_volumes(&self, f: &Filters) -> Result<Vec<Volume>> {
        self.0.list_volumes(f)
    }
    fn remove_volume(&self, name: &str, force: bool) -> Result<()> {
        self.0.remove_volume(name, force)
    }
    fn prune_volumes(&self, f: &Filters) -> Result<(Vec<String>, u64)> {
        self.0.prune_volumes(f)
    }
}

impl NetworkBackend for EngineBackend {
    fn create_network(&self, req: CreateNetwork) -> impl Future<Output = Result<Network>> + Send {
        let e = self.0.clone();
        async move { e.create_network(req).await }
    }
    fn network(&self, name: &str) -> Result<(Network, Vec<NetworkMember>)> {
        let n = self.0.network(name)?;
        let members = self.0.network_members(&n.id);
        Ok((n, members))
    }
    fn list_networks(&self, f: &Filters) -> Result<Vec<Network>> {
        self.0.list_networks(f)
    }
    fn remove_network(&self, name: &str) -> impl Future<Output = Result<()>> + Send {
        let (e, n) = (self.0.clone(), name.to_string());
        async move { e.remove_network(&n).await }
    }
    fn prune_networks(&self, f: Filters) -> impl Future<Output = Result<Vec<String>>> + Send {
        let e = self.0.clone();
        async move { e.prune_networks(&f).await }
    }
    fn connect_network(
        &self,
        network: &str,
        container: &str,
        req: EndpointRequest,
    ) -> impl Future<Output = Result<()>> + Send {
        let (e, n, c) = (self.0.clone(), network.to_string(), container.to_string());
        async move { e.network_connect(&n, &c, req).await }
    }
    fn disconnect_network(
        &self,
        network: &str,
        container: &str,
        force: bool,
    ) -> impl Future<Output = Result<()>> + Send {
        let (e, n, c) = (self.0.clone(), network.to_string(), container.to_string());
        async move { e.network_disconnect(&n, &c, force).await }
    }
}

impl ExecBackend for EngineBackend {
    fn create_exec(&self, container: &str, cfg: ExecConfig) -> Result<String> {
        self.0.create_exec(container, cfg)
    }
    fn inspect_exec(&self, id: &str) -> Result<ExecInstance> {
        self.0.inspect_exec(id)
    }
    fn start_exec(
        &self,
        id: &str,
        detach: bool,
        tty: Option<bool>,
    ) -> impl Future<Output = Result<Option<AttachStreams>>> + Send {
        let (e, i) = (self.0.clone(), id.to_string());
        async move { e.start_exec(&i, detach, tty).await }
    }
    fn resize_exec(&self, id: &str, h: u16, w: u16) -> impl Future<Output = Result<()>> + Send {
        let (e, i) = (self.0.clone(), id.to_string());
        async move { e.resize_exec(&i, h, w).await }
    }
}

impl ImageBackend for EngineBackend {
    fn list_images(&self, req: &ListImages) -> Result<Vec<ImageListing>> {
        self.0.list_images(req)
    }
    fn image(&self, name: &str) -> Result<Image> {
        self.0.image(name)
    }
    fn image_graph_data(&self, img: &Image) -> BTreeMap<String, String> {
        self.0.image_graph_data(img)
    }
    fn history(&self, name: &str) -> Result<Vec<HistoryRow>> {
        self.0.image_history(name)
    }
    fn tag(&self, source: &str, repo: &str, tag: &str) -> Result<()> {
        self.0.tag_image(source, repo, tag)
    }
    fn remove_image(
        &self,
        name: &str,
        force: bool,
        prune: bool,
    ) -> impl Future<Output = Result<Vec<RemovedImage>>> + Send {
        let (e, n) = (self.0.clone(), name.to_string());
        async move { e.remove_image(&n, force, prune).await }
    }
    fn import(
        &self,
        req: ImportImage,
        tar: Box<dyn Read + Send>,
    ) -> impl Future<Output = Result<String>> + Send {
        let e = self.0.clone();
        async move { e.import_image(req, tar).await }
    }
    fn load(
        &self,
        archive: Box<dyn Read + Send>,
    ) -> impl Future<Output = Result<Vec<String>>> + Send {
        let e = self.0.clone();
        async move { e.load_images(archive).await }
    }
    fn save(&self, names: &[String]) -> Result<ArchiveWriter> {
        let plan = self.0.save_plan(names)?;
        let e = self.0.clone();
        Ok(Box::new(move |w: &mut dyn std::io::Write| {
            e.write_save(&plan, w)
        }))
    }
}

impl BuildBackend for EngineBackend {
    fn build(
        &self,
        req: BuildRequest,
        context: Box<dyn Read + Send>,
    ) -> impl Future<Output = Result<mpsc::Receiver<BuildMessage>>> + Send {
        let e = self.0.clone();
        async move { e.build(req, context).await }
    }
}

impl SystemBackend for EngineBackend {
    fn facts(&self) -> SystemFacts {
        self.0.system_facts()
    }
    fn subscribe_events(&self) -> (Vec<Event>, broadcast::Receiver<Event>) {
        self.0.events().subscribe()
    }
    fn disk_usage(&self) -> impl Future<Output = Result<DiskUsage>> + Send {
        let e = self.0.clone();
        async move { e.disk_usage().await }
    }
}
