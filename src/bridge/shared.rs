//! One listener for the `TunnelServer`s of several isolates in a process
//! (`share: true`): the first to listen binds and runs the HTTP side, the
//! others join it. Each isolate (a member) keeps its own inbox, batches and
//! handlers; a call goes to a member that registered its id, the one with the
//! fewest calls queued or running, so none waits on another.
//!
//! The process-wide table of listeners is locked only to join and to leave;
//! requests read the members and routes through `ArcSwap` snapshots.

#![deny(unsafe_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use tokio::sync::oneshot;

use crate::core::config::{shared_difference, ServerConfig};
use crate::core::exposure::{Kind, Registry};
use crate::http::access::AccessSink;
use crate::http::metrics::Metrics;
use crate::http::{metrics_shards, Call, Dispatch, LoadGuard, RequestMeta, RunningServer};

use super::batch::Inbox;
use super::lock;
use super::wake::JsDispatch;

/// One isolate's part in a shared listener.
pub struct Member {
    id: u32,
    registry: Arc<ArcSwap<Registry>>,
    dispatch: JsDispatch,
    /// Calls queued for or running in this isolate.
    load: Arc<AtomicUsize>,
    /// Cleared once the member has left and its leftovers were failed; a
    /// call that reaches it after that fails too (see `submit`).
    alive: AtomicBool,
    /// Its `onAccess`, when it has one.
    access: Option<Arc<dyn AccessSink>>,
}

impl Member {
    pub fn new(
        registry: Arc<ArcSwap<Registry>>,
        dispatch: JsDispatch,
        access: Option<Arc<dyn AccessSink>>,
    ) -> Arc<Member> {
        static NEXT: AtomicU32 = AtomicU32::new(1);
        Arc::new(Member {
            id: NEXT.fetch_add(1, Ordering::Relaxed),
            registry,
            dispatch,
            load: Arc::new(AtomicUsize::new(0)),
            alive: AtomicBool::new(true),
            access,
        })
    }

    /// Calls queued for or running in this isolate.
    pub fn load(&self) -> usize {
        self.load.load(Ordering::Relaxed)
    }

    fn inbox(&self) -> &Inbox {
        &self.dispatch.pusher.inbox
    }

    /// The isolate is gone (or done closing): whatever it still holds or
    /// has queued is answered 500 (its reply channels close), and nothing
    /// reaches it any more.
    pub fn fail_leftovers(&self) {
        self.alive.store(false, Ordering::SeqCst);
        self.inbox().fail_all();
    }

    /// Whether it still has calls queued or running, or answers streaming.
    fn busy(&self) -> bool {
        self.load() > 0 || !lock(&self.inbox().answers_out).is_empty()
    }

    /// Not yet failed (see `fail_leftovers`).
    pub fn alive(&self) -> bool {
        self.alive.load(Ordering::SeqCst)
    }
}

/// Which members serve each route: the union registry's handler numbers
/// index `by_route`.
#[derive(Default)]
struct Routes {
    by_route: Vec<Vec<(Arc<Member>, u32)>>,
}

/// The [`Dispatch`] of a shared listener: routes each call to a member.
pub struct SharedDispatch {
    /// The listener's figures, made when it is bound: every member counts
    /// its batches in them, and a call dropped for want of a member leaves
    /// their queue depth.
    metrics: Arc<Metrics>,
    /// The members calls are routed to.
    members: ArcSwap<Vec<Arc<Member>>>,
    /// Those and the ones still finishing their calls after leaving: aborts
    /// reach them until their leftovers are failed.
    known: ArcSwap<Vec<Arc<Member>>>,
    routes: ArcSwap<Routes>,
    /// Where ties between equally busy members start, turning round.
    turn: AtomicUsize,
}

impl SharedDispatch {
    /// The least busy of `candidates`, ties taken in turn.
    fn pick<'a, T>(&self, candidates: &'a [T], member: impl Fn(&T) -> &Member) -> Option<&'a T> {
        let n = candidates.len();
        if n <= 1 {
            return candidates.first();
        }
        let start = self.turn.fetch_add(1, Ordering::Relaxed) % n;
        let mut best: Option<(&T, usize)> = None;
        for i in 0..n {
            let c = &candidates[(start + i) % n];
            let load = member(c).load();
            if best.is_none_or(|(_, l)| load < l) {
                best = Some((c, load));
            }
        }
        best.map(|(c, _)| c)
    }

    /// Runs `ask` on a member for a question that is not a call (CORS
    /// origin, serializer, auth validators): the least busy one. A member
    /// that left meanwhile fails it (its reply channel closes).
    fn ask(&self, ask: impl FnOnce(&JsDispatch)) {
        let members = self.members.load();
        if let Some(member) = self.pick(&members, |m| m.as_ref()) {
            ask(&member.dispatch);
            if !member.alive() {
                member.fail_leftovers();
            }
        }
    }
}

impl Dispatch for SharedDispatch {
    fn submit(&self, mut call: Call) -> u64 {
        let route = call.handler as usize;
        let mut chosen = None;
        // A member that has just left may still be in the snapshot read:
        // the next snapshot no longer has it.
        for _ in 0..3 {
            let routes = self.routes.load();
            let candidates = routes.by_route.get(route).map_or(&[][..], Vec::as_slice);
            match self.pick(candidates, |c| c.0.as_ref()) {
                Some((member, slot)) if member.alive() => {
                    chosen = Some((member.clone(), *slot));
                    break;
                }
                Some(_) => continue,
                None => break,
            }
        }
        // No member for it any more (it left meanwhile): dropping the call
        // closes its reply channel, and the request is answered 500.
        let Some((member, slot)) = chosen else {
            self.metrics.js_calls_dropped(1);
            return 0;
        };
        call.handler = slot;
        call.load = Some(LoadGuard::new(&member.load));
        let ticket = member.dispatch.submit(call);
        if !member.alive.load(Ordering::SeqCst) {
            // It left between the routes read above and the push: its
            // leftovers were failed before this call arrived.
            member.fail_leftovers();
        }
        (u64::from(member.id) << 32) | ticket
    }

    fn abort(&self, ticket: u64) {
        let id = (ticket >> 32) as u32;
        let known = self.known.load();
        if let Some(member) = known.iter().find(|m| m.id == id) {
            member.dispatch.abort(ticket & u64::from(u32::MAX));
        }
    }

    fn resolve_origin(&self, origin: Option<String>, reply: oneshot::Sender<Option<String>>) {
        self.ask(|d| d.resolve_origin(origin, reply));
    }

    fn serialize(&self, json: String, reply: oneshot::Sender<Option<String>>) {
        self.ask(|d| d.serialize(json, reply));
    }

    fn validate_auth(&self, meta: Arc<RequestMeta>, reply: oneshot::Sender<bool>) {
        self.ask(|d| d.validate_auth(meta, reply));
    }

    fn auth_failed(&self, record: String) {
        self.ask(|d| d.auth_failed(record));
    }

    fn untaken_for(&self) -> Duration {
        // Calls go to whichever member is free: the listener keeps up while
        // one of them does.
        let members = self.members.load();
        members
            .iter()
            .map(|m| m.dispatch.untaken_for())
            .min()
            .unwrap_or(Duration::ZERO)
    }
}

/// The access log of a shared listener: each delivery goes to one sharer's
/// `onAccess`, the first of those still sharing (in joining order) that has
/// taken the delivery before; once none is left, to the last one chosen, so
/// that the requests answered while the server stops are delivered too.
pub struct SharedAccess {
    dispatch: Arc<SharedDispatch>,
    /// The sink `ready` chose, which `deliver` hands the records to.
    chosen: Mutex<Option<Arc<dyn AccessSink>>>,
}

impl SharedAccess {
    pub fn new(dispatch: Arc<SharedDispatch>) -> Arc<SharedAccess> {
        Arc::new(SharedAccess {
            dispatch,
            chosen: Mutex::new(None),
        })
    }
}

impl AccessSink for SharedAccess {
    fn ready(&self) -> bool {
        let members = self.dispatch.members.load();
        let mut chosen = lock(&self.chosen);
        let mut sinks = members.iter().filter_map(|m| m.access.as_ref()).peekable();
        if sinks.peek().is_none() {
            // No sharer left: the server is stopping.
            return chosen.as_ref().is_some_and(|sink| sink.ready());
        }
        match sinks.find(|sink| sink.ready()) {
            Some(sink) => {
                *chosen = Some(sink.clone());
                true
            }
            None => false,
        }
    }

    fn deliver(&self, json: String) {
        let sink = lock(&self.chosen).clone().or_else(|| {
            let members = self.dispatch.members.load();
            members.iter().find_map(|m| m.access.clone())
        });
        if let Some(sink) = sink {
            sink.deliver(json);
        }
    }
}

/// A listener and the members sharing it.
pub struct Listener {
    key: (String, u16),
    /// The first sharer's options, which every other must match.
    config: ServerConfig,
    pub dispatch: Arc<SharedDispatch>,
    /// The union of the members' registries, as the HTTP side reads it.
    pub registry: Arc<ArcSwap<Registry>>,
    pub local_addr: SocketAddr,
    pub metrics_addr: Option<SocketAddr>,
    server: Mutex<Option<RunningServer>>,
    /// The route number of each (task?, id) ever served here: numbers are
    /// never reused, so a request that resolved one before a rebuild still
    /// reaches that id after it. Its lock serialises rebuilds.
    route_of: Mutex<HashMap<(bool, String), u32>>,
}

type Table = Mutex<HashMap<(String, u16), Arc<Listener>>>;

fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(Table::default)
}

/// Why a sharer could not join.
pub enum JoinError {
    /// An option differs from the listener's: its name.
    Mismatch(String),
    Bind(std::io::Error),
}

/// Joins the listener on `host:port` (not 0) if there is one, or binds a new
/// one with `bind` (its dispatch, union registry and figures of its own);
/// `member` is then one of its members, its batches counted in the
/// listener's figures.
pub fn join(
    config: &ServerConfig,
    member: Arc<Member>,
    bind: impl FnOnce(
        Arc<SharedDispatch>,
        Arc<ArcSwap<Registry>>,
        Arc<Metrics>,
    ) -> std::io::Result<RunningServer>,
) -> Result<Arc<Listener>, JoinError> {
    let (host, port) = (config.host(), config.port);
    let mut listeners = lock(table());
    if port != 0 {
        if let Some(listener) = listeners.get(&(host.to_string(), port)) {
            if let Some(field) = shared_difference(&listener.config, config) {
                return Err(JoinError::Mismatch(field.to_string()));
            }
            listener.add(member);
            return Ok(listener.clone());
        }
    }
    let metrics = Arc::new(Metrics::new(metrics_shards(config)));
    let dispatch = Arc::new(SharedDispatch {
        metrics: metrics.clone(),
        members: ArcSwap::default(),
        known: ArcSwap::default(),
        routes: ArcSwap::default(),
        turn: AtomicUsize::new(0),
    });
    let registry = Arc::new(ArcSwap::from_pointee(Registry::default()));
    let server = bind(dispatch.clone(), registry.clone(), metrics).map_err(JoinError::Bind)?;
    let key = (host.to_string(), server.local_addr.port());
    let listener = Arc::new(Listener {
        key: key.clone(),
        config: config.clone(),
        dispatch,
        registry,
        local_addr: server.local_addr,
        metrics_addr: server.metrics_addr,
        server: Mutex::new(Some(server)),
        route_of: Mutex::new(HashMap::new()),
    });
    listener.add(member);
    listeners.insert(key, listener.clone());
    Ok(listener)
}

impl Listener {
    /// The runtime's handle, while it serves.
    pub fn handle(&self) -> Option<tokio::runtime::Handle> {
        lock(&self.server).as_ref().and_then(RunningServer::handle)
    }

    fn add(&self, member: Arc<Member>) {
        // Its batches count in the listener's figures before any call reaches it.
        member.inbox().metrics.store(self.dispatch.metrics.clone());
        for list in [&self.dispatch.members, &self.dispatch.known] {
            list.rcu(|members| {
                let mut next = Vec::clone(members);
                next.push(member.clone());
                next
            });
        }
        self.rebuild();
    }

    /// A member that left is done: aborts no longer look for it.
    pub fn forget(&self, member: &Member) {
        self.dispatch.known.rcu(|members| {
            members
                .iter()
                .filter(|m| m.id != member.id)
                .cloned()
                .collect::<Vec<_>>()
        });
    }

    /// Takes `member` out of the routing at once. Returns the server when it
    /// was the last member (the caller shuts it down; the port is free then).
    pub fn remove(&self, member: &Member) -> Option<RunningServer> {
        let mut listeners = lock(table());
        self.dispatch.members.rcu(|members| {
            members
                .iter()
                .filter(|m| m.id != member.id)
                .cloned()
                .collect::<Vec<_>>()
        });
        self.rebuild();
        if !self.dispatch.members.load().is_empty() {
            return None;
        }
        if listeners
            .get(&self.key)
            .is_some_and(|l| std::ptr::eq(&**l, self))
        {
            listeners.remove(&self.key);
        }
        let server = lock(&self.server).take();
        if let Some(server) = &server {
            server.stop_accepting();
        }
        server
    }

    /// Recomputes the union registry and the routes from the members'
    /// registries; called after any of them changes.
    pub fn rebuild(&self) {
        let mut route_of = lock(&self.route_of);
        let members = self.dispatch.members.load();
        let mut union = Registry::default();
        let mut by_route: Vec<Vec<(Arc<Member>, u32)>> = vec![Vec::new(); route_of.len()];
        let mut allow_list = None;
        for member in members.iter() {
            let registry = member.registry.load();
            if allow_list.is_none() {
                allow_list = registry.allow_list().cloned();
            }
            for (kind, ids) in [
                (Kind::Task, registry.task_ids()),
                (Kind::Event, registry.event_ids()),
            ] {
                for id in ids {
                    let Some(slot) = registry.handler(kind, id) else {
                        continue;
                    };
                    let key = (kind == Kind::Task, id.clone());
                    let next = route_of.len() as u32;
                    let route = *route_of.entry(key).or_insert(next);
                    if route as usize == by_route.len() {
                        by_route.push(Vec::new());
                    }
                    if by_route[route as usize].is_empty() {
                        union.add(kind, id, route);
                    }
                    by_route[route as usize].push((member.clone(), slot));
                }
            }
        }
        self.dispatch.routes.store(Arc::new(Routes { by_route }));
        self.registry
            .store(Arc::new(union.with_allow_list(allow_list)));
    }
}

/// Waits until `member` has no call queued or running and no answer
/// streaming, or `until` has come.
pub fn settle(member: &Member, until: Instant) {
    while member.busy() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(2));
    }
}
