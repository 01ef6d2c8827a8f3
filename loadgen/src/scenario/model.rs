//! The compiled scenario: what the engine runs. Everything here is checked
//! and resolved (templates compiled, variables turned into slots), so the
//! engine never meets a name it has to look up or a value it has to
//! validate mid-run.

use std::time::Duration;

use super::capture::Capture;
use super::rng::Rng;
use super::template::Template;
use super::vars::Slot;

/// A scenario file, compiled.
#[derive(Debug, Clone)]
pub(crate) struct Scenario {
    /// `name`: used for the run folder and `summary.json`'s `scenario`.
    pub(crate) name: String,
    /// `[load]`: what to run when the command line does not say.
    pub(crate) defaults: LoadDefaults,
    /// `[users]`: who the virtual users log in as.
    pub(crate) users: UserPool,
    /// `[http]`: cookies and redirects.
    pub(crate) http: HttpOptions,
    /// The flows; a file with top-level `[[steps]]` has one flow named
    /// `main` of weight 1. Never empty, and no flow has zero steps.
    pub(crate) flows: Vec<Flow>,
    /// Names of the captured variables; `vars[slot.index()]`. Size a
    /// `VarStore` with `vars.len()`.
    pub(crate) vars: Vec<String>,
    /// `[thresholds]`, in file order (a table's keys sorted).
    pub(crate) thresholds: Vec<clw_run::threshold::Threshold>,
    /// Sum of flow weights, cached for `pick_flow`.
    pub(crate) total_weight: u64,
}

impl Scenario {
    /// The index in `flows` of the flow a virtual user runs for its next
    /// iteration, chosen by weight. Draws from `rng` only when there is more
    /// than one flow, so single-flow runs keep the rng stream for templates.
    pub(crate) fn pick_flow_index(&self, rng: &Rng) -> usize {
        if self.flows.len() == 1 {
            return 0;
        }
        let mut ticket = rng.below(self.total_weight);
        for (i, flow) in self.flows.iter().enumerate() {
            if ticket < u64::from(flow.weight) {
                return i;
            }
            ticket -= u64::from(flow.weight);
        }
        unreachable!("ticket below total weight")
    }

    /// Every step of every flow, e.g. to register one histogram per step
    /// name.
    #[cfg(test)]
    pub(crate) fn steps(&self) -> impl Iterator<Item = &Step> {
        self.flows.iter().flat_map(|f| f.steps.iter())
    }
}

/// `[load]`. Command-line flags override each of these.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LoadDefaults {
    /// `users`: concurrent virtual users (closed model) or the cap on
    /// in-flight iterations (open model). Default 10.
    pub(crate) users: u32,
    /// `duration`: load time after ramp-up starts. Default 60 s.
    pub(crate) duration: Duration,
    /// `ramp_up`: time over which users start, evenly. Default 0.
    pub(crate) ramp_up: Duration,
    /// `model` and `arrival_rate`. Default closed.
    pub(crate) model: LoadModel,
    /// `[[load.stages]]`, in order; empty when the load is constant. With
    /// stages, `duration` is their sum, `ramp_up` is zero, and `users` is
    /// the peak target (closed model) or the pool (open model).
    pub(crate) stages: Vec<Stage>,
}

/// One `[[load.stages]]` entry, as k6 writes them: over `duration`, the
/// load moves in a straight line from the previous stage's target (0 for
/// the first) to `target`: virtual users in the closed model, iterations
/// per second in the open model. A zero `duration` is a jump.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Stage {
    pub(crate) duration: Duration,
    pub(crate) target: f64,
}

/// How load is offered.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum LoadModel {
    /// Each virtual user starts its next iteration when the last ends.
    Closed,
    /// Iterations start on a fixed schedule of `arrival_rate` per second
    /// across all users, whether or not earlier ones finished, so latency
    /// can be corrected for coordinated omission.
    Open { arrival_rate: f64 },
}

/// `[users]`: the accounts virtual users log in as. The server's profiles
/// generate `user-0..user-{count-1}` with password `clw-load-test`, which
/// is the default here.
#[derive(Debug, Clone)]
pub(crate) struct UserPool {
    /// `count`: how many users the pool has. Default 16, the test server's
    /// user count; the shipped scenarios set it to match the profiles.
    /// The engine may lower it to what the target really has.
    pub(crate) count: u64,
    /// `username`: default `user-{index}`.
    pub(crate) username: Template,
    /// `password`: default `clw-load-test`.
    pub(crate) password: Template,
    /// `pick`: default `per-vu`.
    pub(crate) pick: UserPick,
    /// `file`: the accounts' other columns, when the pool comes from a
    /// CSV file.
    pub(crate) table: Option<UserTable>,
}

/// `[users] file = "users.csv"`: one row per account, a header row naming
/// the columns. Each column is a variable (`{client_id}`) set from the
/// picked user's row at the start of each iteration; `username` (or
/// `user`) and `password` columns are `{user}` and `{password}`.
#[derive(Debug, Clone, Default)]
pub(crate) struct UserTable {
    /// The variable each column is stored into, in column order.
    pub(crate) slots: Vec<Slot>,
    /// The rows, each as long as `slots`.
    pub(crate) rows: Vec<Vec<Box<[u8]>>>,
}

impl UserTable {
    /// Set the columns of `row` into `vars`.
    pub(crate) fn set_row(&self, row: u64, vars: &mut super::VarStore) {
        let Some(row) = usize::try_from(row).ok().and_then(|r| self.rows.get(r)) else {
            return;
        };
        for (slot, value) in self.slots.iter().zip(row) {
            vars.set(*slot, value);
        }
    }
}

/// `[http]`: the virtual users' HTTP clients, browser-like by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HttpOptions {
    /// `cookies` (default true): a cookie jar per virtual user, as k6,
    /// Locust and Gatling keep one.
    pub(crate) cookies: bool,
    /// `keep_cookies` (default false): keep the jar across iterations
    /// instead of emptying it at the start of each, which makes each
    /// iteration a new browser session.
    pub(crate) keep_cookies: bool,
}

/// How a virtual user chooses which pool user it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UserPick {
    /// `per-vu`: always user `vu % count`, like a real person keeping
    /// their account.
    PerVu,
    /// `random`: a uniformly random user each iteration.
    Random,
}

impl UserPool {
    /// The number of the pool user virtual user `vu` runs as for its next
    /// iteration: put it in `RenderCtx::user_index`, then render `username`
    /// and `password` with that context. Draws from `rng` only for
    /// `random`.
    pub(crate) fn pick_index(&self, vu: u32, rng: &Rng) -> u64 {
        match self.pick {
            UserPick::PerVu => u64::from(vu) % self.count,
            UserPick::Random => rng.below(self.count),
        }
    }
}

/// A weighted sequence of steps; one iteration runs one flow start to end.
#[derive(Debug, Clone)]
pub(crate) struct Flow {
    /// `name`; `main` for a file with top-level `[[steps]]`.
    pub(crate) name: String,
    /// `weight` (default 1, at least 1): relative chance of being picked.
    pub(crate) weight: u32,
    pub(crate) steps: Vec<Step>,
}

/// One HTTP request, possibly repeated.
#[derive(Debug, Clone)]
pub(crate) struct Step {
    /// `name`, default the last path segment (`/auth/login` -> `login`).
    /// The tag for this step's latency histogram and CSV rows.
    pub(crate) name: String,
    pub(crate) method: Method,
    /// Path and query, starting with `/`; appended to the target URL.
    pub(crate) path: Template,
    /// The path starts with a variable (`{next}`, a captured `Location`):
    /// it is sent as the server gave it, without the target's base path,
    /// and an absolute URL on the target's origin is cut to its path.
    pub(crate) path_from_var: bool,
    /// Extra request headers, sorted by name.
    pub(crate) headers: Vec<(String, Template)>,
    /// `body` (JSON), `form` or `raw`, with the Content-Type the engine
    /// sends with it.
    pub(crate) body: Option<Body>,
    /// `basic_auth`: an `Authorization: Basic` header rendered per request.
    pub(crate) basic_auth: Option<BasicAuth>,
    /// Redirects to follow before judging the response (`follow_redirects`
    /// of the step, else of `[http]`, else 10); 0 judges the 3xx itself.
    pub(crate) follow_redirects: u32,
    /// Response fields to store after a response with an expected status.
    pub(crate) captures: Vec<Capture>,
    /// Statuses that count as success. Default `2xx`.
    pub(crate) expect: StatusSet,
    /// `repeat`: how many times the request is sent in a row (default 1).
    pub(crate) repeat: u32,
    /// `think_time`: pause after each request of this step (default 0).
    pub(crate) think_time: Duration,
    /// Captured variables this step's templates read (tests check it; the
    /// engine needs only `reauth`, derived from it at parse time).
    #[cfg(test)]
    pub(crate) uses: Vec<Slot>,
    /// Index, in the same flow, of the earliest step that captures one of
    /// `uses` (the login, typically): the step to re-run when the server
    /// says 401, as a real client logs in again when its token is refused.
    pub(crate) reauth: Option<usize>,
}

impl Step {
    /// Whether the step's templates read captured variables.
    #[cfg(test)]
    pub(crate) fn uses_vars(&self) -> bool {
        !self.uses.is_empty()
    }

    /// The step to re-run before retrying this one, when a response with
    /// `status` means "your token is no good": a 401 the step did not
    /// expect, on a step that sends a captured value.
    pub(crate) fn reauth_on(&self, status: u16) -> Option<usize> {
        if status == 401 && !self.expect.contains(401) {
            self.reauth
        } else {
            None
        }
    }
}

/// A request body and the `Content-Type` the engine sends for it.
#[derive(Debug, Clone)]
pub(crate) struct Body {
    pub(crate) template: Template,
    /// `application/json` for `body`, `application/x-www-form-urlencoded`
    /// for `form`, `content_type` for `raw`; `None` when the step's own
    /// `Content-Type` header replaces it (never both on the wire) or a
    /// `raw` body has none.
    pub(crate) content_type: Option<Box<str>>,
}

/// `basic_auth = { username, password }` (RFC 7617), as OAuth2 clients
/// authenticate to a token endpoint.
#[derive(Debug, Clone)]
pub(crate) struct BasicAuth {
    pub(crate) username: Template,
    pub(crate) password: Template,
}

/// HTTP methods a scenario may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub(crate) enum Method {
    Get,
    Post,
    Put,
    Patch,
    Delete,
    Head,
    Options,
}

impl Method {
    /// The method as it goes on the request line.
    pub(crate) fn as_str(&self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
            Method::Head => "HEAD",
            Method::Options => "OPTIONS",
        }
    }
}

/// A set of HTTP statuses (100..=599), e.g. `2xx` or `[200, 401]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StatusSet {
    bits: [u64; 10],
    /// As written in the file, for messages: `2xx`, `[200, 401]`.
    label: String,
}

impl StatusSet {
    /// An empty set labelled `label`.
    pub(crate) fn new(label: impl Into<String>) -> StatusSet {
        StatusSet {
            bits: [0; 10],
            label: label.into(),
        }
    }

    /// Add one status.
    pub(crate) fn insert(&mut self, status: u16) {
        let s = usize::from(status);
        if s < 640 {
            self.bits[s / 64] |= 1 << (s % 64);
        }
    }

    /// Add a class: 2 adds 200..=299.
    pub(crate) fn insert_class(&mut self, class: u16) {
        (class * 100..class * 100 + 100).for_each(|s| self.insert(s));
    }

    /// Add every status of `other`.
    pub(crate) fn merge(&mut self, other: &StatusSet) {
        self.bits
            .iter_mut()
            .zip(other.bits)
            .for_each(|(a, b)| *a |= b);
    }

    pub(crate) fn relabel(&mut self, label: impl Into<String>) {
        self.label = label.into();
    }

    pub(crate) fn contains(&self, status: u16) -> bool {
        let s = usize::from(status);
        s < 640 && self.bits[s / 64] & (1 << (s % 64)) != 0
    }

    pub(crate) fn label(&self) -> &str {
        &self.label
    }
}
