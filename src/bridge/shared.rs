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

use crate::core::exposure::{Kind, Registry};
use crate::http::{Call, Dispatch, LoadGuard, RequestMeta, RunningServer};

use super::batch::Inbox;
use super::lock;
use super::wake::JsDispatch;

/// Options that may differ between the sharers of a listener: the HTTP
/// threads are the first sharer's, and `share` itself.
const MAY_DIFFER: &[&str] = &["workerThreads", "share", "host", "port"];

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
}

impl Member {
    pub fn new(registry: Arc<ArcSwap<Registry>>, dispatch: JsDispatch) -> Arc<Member> {
        static NEXT: AtomicU32 = AtomicU32::new(1);
        Arc::new(Member {
            id: NEXT.fetch_add(1, Ordering::Relaxed),
            registry,
            dispatch,
            load: Arc::new(AtomicUsize::new(0)),
            alive: AtomicBool::new(true),
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
}

/// Which members serve each route: the union registry's handler numbers
/// index `by_route`.
#[derive(Default)]
struct Routes {
    by_route: Vec<Vec<(Arc<Member>, u32)>>,
}

/// The [`Dispatch`] of a shared listener: routes each call to a member.
#[derive(Default)]
pub struct SharedDispatch {
    members: ArcSwap<Vec<Arc<Member>>>,
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

    /// A member for a question that is not a call (CORS origin, serializer,
    /// auth validators): the least busy one.
    fn any(&self) -> Option<Arc<Member>> {
        let members = self.members.load();
        self.pick(&members, |m| m.as_ref()).cloned()
    }
}

impl Dispatch for SharedDispatch {
    fn submit(&self, mut call: Call) -> u64 {
        let routes = self.routes.load();
        let candidates = routes
            .by_route
            .get(call.handler as usize)
            .map_or(&[][..], Vec::as_slice);
        // No member for it any more (it left meanwhile): dropping the call
        // closes its reply channel, and the request is answered 500.
        let Some((member, slot)) = self.pick(candidates, |c| c.0.as_ref()) else {
            return 0;
        };
        call.handler = *slot;
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
        let members = self.members.load();
        if let Some(member) = members.iter().find(|m| m.id == id) {
            member.dispatch.abort(ticket & u64::from(u32::MAX));
        }
    }

    fn resolve_origin(&self, origin: Option<String>, reply: oneshot::Sender<Option<String>>) {
        if let Some(member) = self.any() {
            member.dispatch.resolve_origin(origin, reply);
        }
    }

    fn serialize(&self, json: String, reply: oneshot::Sender<Option<String>>) {
        if let Some(member) = self.any() {
            member.dispatch.serialize(json, reply);
        }
    }

    fn validate_auth(&self, meta: Arc<RequestMeta>, reply: oneshot::Sender<bool>) {
        if let Some(member) = self.any() {
            member.dispatch.validate_auth(meta, reply);
        }
    }

    fn auth_failed(&self, record: String) {
        if let Some(member) = self.any() {
            member.dispatch.auth_failed(record);
        }
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

/// A listener and the members sharing it.
pub struct Listener {
    key: (String, u16),
    /// The first sharer's options, which every other must match.
    options: serde_json::Map<String, serde_json::Value>,
    pub dispatch: Arc<SharedDispatch>,
    /// The union of the members' registries, as the HTTP side reads it.
    pub registry: Arc<ArcSwap<Registry>>,
    pub local_addr: SocketAddr,
    pub metrics_addr: Option<SocketAddr>,
    server: Mutex<Option<RunningServer>>,
    /// Serialises rebuilding the routes (joins, leaves, registrations).
    rebuilding: Mutex<()>,
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
/// one with `bind`; `member` is then one of its members.
pub fn join(
    host: &str,
    port: u16,
    options: &serde_json::Value,
    member: Arc<Member>,
    bind: impl FnOnce(Arc<SharedDispatch>, Arc<ArcSwap<Registry>>) -> std::io::Result<RunningServer>,
) -> Result<Arc<Listener>, JoinError> {
    let options = options.as_object().cloned().unwrap_or_default();
    let mut listeners = lock(table());
    if port != 0 {
        if let Some(listener) = listeners.get(&(host.to_string(), port)) {
            if let Some(field) = differing(&listener.options, &options) {
                return Err(JoinError::Mismatch(field));
            }
            listener.add(member);
            return Ok(listener.clone());
        }
    }
    let dispatch = Arc::new(SharedDispatch::default());
    let registry = Arc::new(ArcSwap::from_pointee(Registry::default()));
    let server = bind(dispatch.clone(), registry.clone()).map_err(JoinError::Bind)?;
    let key = (host.to_string(), server.local_addr.port());
    let listener = Arc::new(Listener {
        key: key.clone(),
        options,
        dispatch,
        registry,
        local_addr: server.local_addr,
        metrics_addr: server.metrics_addr,
        server: Mutex::new(Some(server)),
        rebuilding: Mutex::new(()),
    });
    listener.add(member);
    listeners.insert(key, listener.clone());
    Ok(listener)
}

/// The first option (by name) that differs between two sharers.
fn differing(
    a: &serde_json::Map<String, serde_json::Value>,
    b: &serde_json::Map<String, serde_json::Value>,
) -> Option<String> {
    let mut names: Vec<&String> = a.keys().chain(b.keys()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter(|name| !MAY_DIFFER.contains(&name.as_str()))
        .find(|name| a.get(*name) != b.get(*name))
        .cloned()
}

impl Listener {
    /// The runtime's handle, while it serves.
    pub fn handle(&self) -> Option<tokio::runtime::Handle> {
        lock(&self.server).as_ref().and_then(RunningServer::handle)
    }

    fn add(&self, member: Arc<Member>) {
        self.dispatch.members.rcu(|members| {
            let mut next = Vec::clone(members);
            next.push(member.clone());
            next
        });
        self.rebuild();
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
        let _one_at_a_time = lock(&self.rebuilding);
        let members = self.dispatch.members.load();
        let mut union = Registry::default();
        let mut by_route: Vec<Vec<(Arc<Member>, u32)>> = Vec::new();
        let mut route_of: HashMap<(bool, String), u32> = HashMap::new();
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
                    let route = *route_of.entry(key).or_insert_with(|| {
                        by_route.push(Vec::new());
                        let route = (by_route.len() - 1) as u32;
                        union.add(kind, id, route);
                        route
                    });
                    by_route[route as usize].push((member.clone(), slot));
                }
            }
        }
        self.dispatch.routes.store(Arc::new(Routes { by_route }));
        self.registry
            .store(Arc::new(union.with_allow_list(allow_list)));
    }
}

/// Waits until `member` has no call queued or running, or `grace` passed.
pub fn settle(member: &Member, grace: Duration) {
    let until = Instant::now() + grace;
    while member.load() > 0 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(2));
    }
}
