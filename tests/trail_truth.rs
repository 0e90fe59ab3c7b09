//! The trail never lies: fault injection on both stores. Random mixes of
//! reads, writes, registrations, consents, withdrawals and ended
//! registrations are sent while the audit store is stalled from another
//! session (SQLite: `BEGIN EXCLUSIVE`; PostgreSQL: `LOCK TABLE audit_records
//! IN ACCESS EXCLUSIVE MODE`) for a random time around the commit deadline:
//! shorter, equal, longer, and longer than the store's own lock wait.
//! Afterwards what every client received is compared with what the trail and
//! the registers say:
//! - every answered request has exactly one record, with the status the client got;
//! - a 2xx read's record names exactly the fields in the body the client got;
//! - a 503 has a record saying 503 with nothing shared, and its register
//!   change is absent from the register;
//! - a register change answered 2xx is present;
//! - the chains verify.
//!
//! Seeded: `TRAIL_SEED=<n>` replays a run (the seed is printed);
//! `TRAIL_ROUNDS=<n>` sets the rounds per store (default 8).
#![allow(
    clippy::too_many_lines,
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    reason = "a scenario reads top to bottom (tests are exempt from the 80-line rule); test counts are small"
)]

mod common;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use http::Method;
use serde_json::{Value, json};
use sqlx::{Executor, Row};

/// `audit.commit_timeout_ms` in this test.
const DEADLINE_MS: u64 = 400;
/// `audit.transaction_timeout_ms`: the longest the store may keep a
/// transaction waiting (its lock wait), below which stalls are "short".
const STORE_WAIT_MS: u64 = 600;

const VERZUIM: &str = "/v1/aoj-vo-noorderlicht/las-noorderlicht/leerlingen/L1001/verzuim";
const ADVIES: &str = "/v1/expertteam-po/jgz-dossier/jeugdigen/L1001/advies";
const MELDING: &str = "/v1/aoj-vo-noorderlicht/leerplicht-register/leerlingen/L1003/meldingen";
const CONSENTS: &str = "/registers/v1/expertteam-po/toestemmingen";
const REGISTRATIONS: &str = "/registers/v1/aoj-vo-noorderlicht/aanmeldingen";

/// xorshift64*: a recorded seed replays the same choices.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn seed() -> u64 {
    std::env::var("TRAIL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        })
}

/// One request of the mix.
#[derive(Clone, Debug)]
enum Op {
    /// Leerplicht reads the verzuim overview (every field allowed).
    ReadAll,
    /// WIJ reads the same document (filtered).
    ReadFiltered,
    /// The SWV reads the JGZ advice (flows only with an active consent).
    ReadConsent,
    /// The school sends a verzuim melding to the leerplicht register.
    Write,
    /// The school registers L1002 in the AOJ-team (`reference` is unique).
    Register { reference: String },
    /// The school ends one of the registrations it made.
    End { id: String },
    /// The school records the parents' consent (`form` is unique).
    Consent { form: String },
    /// The school withdraws one of the consents it recorded.
    Withdraw { id: String },
}

struct Answer {
    op: Op,
    status: u16,
    request_id: String,
    body: Value,
}

struct Clients {
    leerplicht: TestClient,
    wij: TestClient,
    swv: TestClient,
    vo: TestClient,
    po: TestClient,
}

impl Clients {
    fn new(gw: &mut TestGateway) -> Self {
        Self {
            leerplicht: gw.client("gemeente-groningen"),
            wij: gw.client("wij-groningen"),
            swv: gw.client("swv-po-groningen"),
            vo: gw.client("vo-noorderlicht"),
            po: gw.client("po-de-wadden"),
        }
    }

    async fn send(&self, op: Op) -> Answer {
        let json_ct = ("content-type", "application/json");
        let (client, method, path, headers, body) = match &op {
            Op::ReadAll => (
                &self.leerplicht,
                Method::GET,
                VERZUIM.to_owned(),
                vec![("x-doelbinding", "aanpak-verzuim")],
                None,
            ),
            Op::ReadFiltered => (
                &self.wij,
                Method::GET,
                VERZUIM.to_owned(),
                vec![("x-doelbinding", "afstemming-ondersteuning")],
                None,
            ),
            Op::ReadConsent => (
                &self.swv,
                Method::GET,
                ADVIES.to_owned(),
                vec![("x-doelbinding", "passende-plek")],
                None,
            ),
            Op::Write => (
                &self.vo,
                Method::POST,
                MELDING.to_owned(),
                vec![("x-doelbinding", "aanpak-verzuim"), json_ct],
                Some(
                    json!({"melding": {"datum": "2026-11-20", "soort": "ongeoorloofd", "uren": 8}, "prive": "x"}),
                ),
            ),
            Op::Register { reference } => (
                &self.vo,
                Method::POST,
                REGISTRATIONS.to_owned(),
                vec![json_ct],
                Some(json!({"leerling": "L1002", "referentie": reference})),
            ),
            Op::End { id } => (
                &self.vo,
                Method::POST,
                format!("{REGISTRATIONS}/{id}/beeindigen"),
                vec![json_ct],
                Some(json!({"leerling": "L1002"})),
            ),
            Op::Consent { form } => (
                &self.po,
                Method::POST,
                CONSENTS.to_owned(),
                vec![json_ct],
                Some(
                    json!({"leerling": "L1001", "gegeven_door": "parents", "doelen": ["passende-plek"], "formulier": form}),
                ),
            ),
            Op::Withdraw { id } => (
                &self.po,
                Method::POST,
                format!("{CONSENTS}/{id}/intrekken"),
                vec![json_ct],
                Some(json!({"leerling": "L1001", "referentie": "trail-truth"})),
            ),
        };
        let r = client
            .request(
                method,
                &path,
                &headers,
                body.map(|b| b.to_string().into_bytes()),
            )
            .await
            .unwrap_or_else(|e| panic!("{op:?}: no answer: {e}"));
        Answer {
            status: r.status.as_u16(),
            request_id: r.header("x-request-id").unwrap_or_default().to_owned(),
            body: r.json(),
            op,
        }
    }
}

/// Holds the store's write lock from another session for `hold`.
async fn stall(store_url: &str, locked: tokio::sync::oneshot::Sender<()>, hold: Duration) {
    let store = poortwachter::audit::Store::connect(store_url)
        .await
        .unwrap();
    if store_url.starts_with("sqlite:") {
        let mut conn = store.pool().acquire().await.unwrap().detach();
        conn.execute("BEGIN EXCLUSIVE").await.unwrap();
        let _ = locked.send(());
        tokio::time::sleep(hold).await;
        conn.execute("ROLLBACK").await.unwrap();
    } else {
        let tx = lock_table(&store, "audit_records").await;
        let _ = locked.send(());
        tokio::time::sleep(hold).await;
        tx.rollback().await.unwrap();
    }
    store.pool().close().await;
}

/// Stall lengths around the deadline: shorter, about equal, longer, and
/// longer than the store's own lock wait.
fn stall_length(rng: &mut Rng) -> Duration {
    let base = match rng.below(5) {
        0 => DEADLINE_MS / 2,
        1 => DEADLINE_MS,
        2 => DEADLINE_MS * 3 / 2,
        3 => DEADLINE_MS + STORE_WAIT_MS,
        _ => DEADLINE_MS * 2 + STORE_WAIT_MS * 2,
    };
    Duration::from_millis(base - base / 5 + rng.below(base * 2 / 5 + 1))
}

/// Pools of register entries the mix may end or withdraw (each once).
#[derive(Default)]
struct Pools {
    consents: Vec<String>,
    registrations: Vec<String>,
    counter: u64,
}

impl Pools {
    #[allow(
        clippy::match_same_arms,
        reason = "the arms spell out the weights of the mix; the fallback is separate"
    )]
    fn pick(&mut self, rng: &mut Rng) -> Op {
        self.counter += 1;
        let n = self.counter;
        match rng.below(10) {
            0 | 1 => Op::ReadAll,
            2 => Op::ReadFiltered,
            3 | 4 => Op::ReadConsent,
            5 => Op::Write,
            6 => Op::Register {
                reference: format!("TT-R-{n}"),
            },
            7 => Op::Consent {
                form: format!("TT-C-{n}"),
            },
            8 if !self.consents.is_empty() => {
                let i = rng.below(self.consents.len() as u64) as usize;
                Op::Withdraw {
                    id: self.consents.swap_remove(i),
                }
            }
            9 if !self.registrations.is_empty() => {
                let i = rng.below(self.registrations.len() as u64) as usize;
                Op::End {
                    id: self.registrations.swap_remove(i),
                }
            }
            _ => Op::ReadAll,
        }
    }

    /// New entries answered 201 become candidates for later rounds.
    fn learn(&mut self, a: &Answer) {
        if a.status != 201 {
            return;
        }
        let id = a.body["id"].as_str().unwrap_or_default().to_owned();
        match a.op {
            Op::Consent { .. } => self.consents.push(id),
            Op::Register { .. } => self.registrations.push(id),
            _ => {}
        }
    }
}

/// One round: stall the store, send `n` requests spread over the stall and
/// just after it, collect every answer.
async fn round(
    clients: &Arc<Clients>,
    store_url: &str,
    rng: &mut Rng,
    pools: &mut Pools,
) -> (Duration, Vec<Answer>) {
    let hold = stall_length(rng);
    let (locked_tx, locked_rx) = tokio::sync::oneshot::channel();
    let url = store_url.to_owned();
    let staller = tokio::spawn(async move { stall(&url, locked_tx, hold).await });
    locked_rx.await.unwrap();
    let n = 4 + rng.below(9);
    let span = hold.as_millis() as u64 + DEADLINE_MS / 2;
    let mut tasks = Vec::new();
    for _ in 0..n {
        let op = pools.pick(rng);
        let at = Duration::from_millis(rng.below(span));
        let clients = Arc::clone(clients);
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(at).await;
            clients.send(op).await
        }));
    }
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.unwrap());
    }
    staller.await.unwrap();
    for a in &answers {
        pools.learn(a);
    }
    (hold, answers)
}

/// The set of leaf paths of a JSON body (`a.b`, `a[].b`), for comparison
/// with the record's `fields_shared` (array markers dropped on both sides).
fn leaf_paths(v: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                leaf_paths(v, &p, out);
            }
        }
        Value::Array(items) if items.iter().any(serde_json::Value::is_object) => {
            for i in items {
                leaf_paths(i, prefix, out);
            }
        }
        _ => {
            out.insert(prefix.to_owned());
        }
    }
}

fn shared_paths(fields_shared: &str) -> BTreeSet<String> {
    let list: Vec<String> = serde_json::from_str(fields_shared).unwrap();
    list.into_iter().map(|p| p.replace("[]", "")).collect()
}

/// What the store says afterwards.
struct Trail {
    records: HashMap<String, Vec<poortwachter::audit::StoredRow>>,
    consents: HashMap<String, Option<String>>,
    consent_ids: HashMap<String, Option<String>>,
    registrations: HashMap<String, Option<String>>,
    registration_ids: HashMap<String, Option<String>>,
}

async fn read_trail(store_url: &str) -> Trail {
    let store = poortwachter::audit::Store::connect(store_url)
        .await
        .unwrap();
    let mut records: HashMap<String, Vec<_>> = HashMap::new();
    for r in store.all_rows().await.unwrap() {
        if matches!(r.kind.as_str(), "request" | "register") {
            records.entry(r.request_id.clone()).or_default().push(r);
        }
    }
    let (mut consents, mut consent_ids) = (HashMap::new(), HashMap::new());
    for r in sqlx::query("SELECT id, form_reference, withdrawn_at FROM consents")
        .fetch_all(store.pool())
        .await
        .unwrap()
    {
        let w: Option<String> = r.get(2);
        consents.insert(r.get::<String, _>(1), w.clone());
        consent_ids.insert(r.get::<String, _>(0), w);
    }
    let (mut registrations, mut registration_ids) = (HashMap::new(), HashMap::new());
    for r in sqlx::query("SELECT id, reference, ended_at FROM case_registrations")
        .fetch_all(store.pool())
        .await
        .unwrap()
    {
        let e: Option<String> = r.get(2);
        registrations.insert(r.get::<String, _>(1), e.clone());
        registration_ids.insert(r.get::<String, _>(0), e);
    }
    store.pool().close().await;
    Trail {
        records,
        consents,
        consent_ids,
        registrations,
        registration_ids,
    }
}

/// Every contradiction between what `a`'s client got and the trail.
fn contradictions(a: &Answer, t: &Trail) -> Vec<String> {
    let ok = (200..300).contains(&a.status);
    let mut out: Vec<String> = register_contradiction(a, ok, t).into_iter().collect();
    let recs = t
        .records
        .get(&a.request_id)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    if recs.len() != 1 {
        let what: Vec<String> = recs
            .iter()
            .map(|r| {
                format!(
                    "#{} {} {} {} {}",
                    r.seq, r.kind, r.status, r.outcome, r.reason
                )
            })
            .collect();
        out.push(format!(
            "{} record(s) for one request: {what:?}",
            recs.len()
        ));
        return out;
    }
    let rec = &recs[0];
    if rec.status != i64::from(a.status) {
        out.push(format!(
            "record says status {}, client got {}",
            rec.status, a.status
        ));
    }
    if !ok && rec.fields_shared != "[]" {
        out.push(format!(
            "client got {}, record shares {}",
            a.status, rec.fields_shared
        ));
    }
    if a.status == 503 {
        let code = a.body["type"]
            .as_str()
            .unwrap_or_default()
            .rsplit(':')
            .next()
            .unwrap_or_default();
        if rec.outcome != "error" || rec.reason != code {
            out.push(format!(
                "503 {code} recorded as {} {}",
                rec.outcome, rec.reason
            ));
        }
    }
    if ok && matches!(a.op, Op::ReadAll | Op::ReadFiltered | Op::ReadConsent) {
        let mut got = BTreeSet::new();
        leaf_paths(&a.body, "", &mut got);
        let recorded = shared_paths(&rec.fields_shared);
        if got != recorded {
            out.push(format!(
                "client got fields {got:?}, record says {recorded:?}"
            ));
        }
    }
    out
}

/// A register change answered 2xx must be in the register; one answered
/// anything else must not.
fn register_contradiction(a: &Answer, ok: bool, t: &Trail) -> Option<String> {
    let present = match &a.op {
        Op::Consent { form } => t.consents.contains_key(form),
        Op::Register { reference } => t.registrations.contains_key(reference),
        Op::Withdraw { id } => t.consent_ids.get(id).is_some_and(Option::is_some),
        Op::End { id } => t.registration_ids.get(id).is_some_and(Option::is_some),
        _ => return None,
    };
    (present != ok).then(|| {
        format!(
            "client got {}, register change {}",
            a.status,
            if present { "committed" } else { "absent" }
        )
    })
}

async fn trail_matches_answers(store: StoreKind) {
    let seed = seed();
    let rounds: usize = std::env::var("TRAIL_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(8);
    eprintln!("trail_truth {store:?}: TRAIL_SEED={seed} TRAIL_ROUNDS={rounds}");
    let mut rng = Rng(seed);
    let mut gw = TestGateway::start_with(Options {
        store,
        server_extra: "request_timeout_ms = 3000".into(),
        audit_extra: format!(
            "commit_timeout_ms = {DEADLINE_MS}\ntransaction_timeout_ms = {STORE_WAIT_MS}\n\n[registers]\nrevocation_grace_ms = 0\nlookup_timeout_ms = 2000"
        ),
        ..Options::default()
    })
    .await;
    let clients = Arc::new(Clients::new(&mut gw));
    let mut pools = Pools::default();
    // Entries to withdraw and end, made while the store answers.
    for i in 0..6 {
        for op in [
            Op::Consent {
                form: format!("TT-C-setup-{i}"),
            },
            Op::Register {
                reference: format!("TT-R-setup-{i}"),
            },
        ] {
            let a = clients.send(op).await;
            assert_eq!(a.status, 201, "setup: {}", a.body);
            pools.learn(&a);
        }
    }
    let mut answers = Vec::new();
    let started = Instant::now();
    for r in 0..rounds {
        let (hold, got) = round(&clients, &gw.store_url, &mut rng, &mut pools).await;
        let statuses: Vec<u16> = got.iter().map(|a| a.status).collect();
        eprintln!("round {r}: store stalled {hold:?}, answers {statuses:?}");
        answers.extend(got);
        // Let the writer catch up before the next stall.
        tokio::time::sleep(Duration::from_millis(DEADLINE_MS)).await;
    }
    eprintln!("{} requests in {:?}", answers.len(), started.elapsed());
    let store_url = gw.store_url.clone();
    let (tmp, _) = gw.stop().await;
    let trail = read_trail(&store_url).await;
    let mut failures = Vec::new();
    for a in &answers {
        for c in contradictions(a, &trail) {
            failures.push(format!("{:?} {} ({}): {c}", a.op, a.status, a.request_id));
        }
    }
    let refused = answers.iter().filter(|a| a.status == 503).count();
    eprintln!(
        "reliability: trail vs clients ({store:?}, seed {seed}): {} requests in {rounds} store stalls, {refused} answered 503, {} contradiction(s)",
        answers.len(),
        failures.len()
    );
    let cfg = poortwachter::config::Config::load(&tmp.path().join("poortwachter.toml")).unwrap();
    let store = poortwachter::audit::Store::connect(&store_url)
        .await
        .unwrap();
    let report = poortwachter::audit::admin::verify(&store, &cfg.audit, None, None)
        .await
        .unwrap();
    assert!(report.ok(), "{report}");
    assert!(
        failures.is_empty(),
        "TRAIL_SEED={seed}: {} contradiction(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_trail_matches_what_clients_got_under_store_stalls() {
    trail_matches_answers(StoreKind::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_trail_matches_what_clients_got_under_store_stalls() {
    trail_matches_answers(StoreKind::Postgres).await;
}

/// A TCP relay between the gateway and PostgreSQL that can lose the store's
/// answer to the writer's `COMMIT` (the transaction lands, the writer never
/// hears) and then refuse connections for a while: a network partition at
/// the worst moment. The writer's connection is the one that sends the
/// batch insert (`INSERT INTO audit_records`).
mod relay {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};
    use tokio::sync::Mutex;

    /// What cuts the writer's connection once armed: its next message, or
    /// the next message that carries `COMMIT`.
    #[derive(Clone, Copy, PartialEq)]
    pub enum Trigger {
        NextMessage,
        Commit,
    }

    #[derive(Default)]
    pub struct Relay {
        armed: Mutex<Option<Trigger>>,
        down: AtomicBool,
    }

    impl Relay {
        pub async fn start(upstream: String) -> (Arc<Self>, u16) {
            let relay = Arc::new(Self::default());
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            let r = Arc::clone(&relay);
            tokio::spawn(async move {
                loop {
                    let Ok((client, _)) = listener.accept().await else {
                        continue;
                    };
                    if r.down.load(Ordering::SeqCst) {
                        continue; // dropped: connection refused in effect
                    }
                    let Ok(server) = TcpStream::connect(upstream.as_str()).await else {
                        continue;
                    };
                    tokio::spawn(Arc::clone(&r).pipe(client, server));
                }
            });
            (relay, port)
        }

        /// The next matching message on the writer's connection is
        /// forwarded, its answer lost, and the relay refuses connections
        /// for `down`.
        pub async fn arm(&self, t: Trigger) {
            *self.armed.lock().await = Some(t);
        }

        pub fn is_down(&self) -> bool {
            self.down.load(Ordering::SeqCst)
        }

        async fn pipe(self: Arc<Self>, client: TcpStream, server: TcpStream) {
            let (mut cr, mut cw) = client.into_split();
            let (mut sr, mut sw) = server.into_split();
            let lost = Arc::new(AtomicBool::new(false));
            let lost2 = Arc::clone(&lost);
            let back = tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    let n = match sr.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    if lost2.load(Ordering::SeqCst) || cw.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
            let mut writer = false;
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = match cr.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                let chunk = &buf[..n];
                writer |= contains(chunk, b"INSERT INTO audit_records");
                let cut = writer && self.triggered(chunk).await;
                if cut {
                    lost.store(true, Ordering::SeqCst);
                    self.down.store(true, Ordering::SeqCst);
                }
                if sw.write_all(chunk).await.is_err() {
                    break;
                }
                if cut {
                    // Let the store act on it, then break the connection.
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    break;
                }
            }
            back.abort();
        }

        async fn triggered(&self, chunk: &[u8]) -> bool {
            let mut armed = self.armed.lock().await;
            let hit = match *armed {
                Some(Trigger::NextMessage) => true,
                Some(Trigger::Commit) => contains(chunk, b"COMMIT"),
                None => false,
            };
            if hit {
                *armed = None;
            }
            hit
        }

        pub fn heal(&self) {
            self.down.store(false, Ordering::SeqCst);
        }
    }

    fn contains(hay: &[u8], needle: &[u8]) -> bool {
        hay.windows(needle.len()).any(|w| w == needle)
    }
}

/// The case no protocol closes: the store receives the writer's COMMIT, the
/// answer is lost and the store stays unreachable past the deadline. The
/// client is answered 503 (nothing is released without a known-durable
/// record); once the store is back the writer finds the batch landed and
/// appends a correction (for a register change: undone in the same
/// transaction), so the trail ends up saying what the client was told.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_batch_landed_in_doubt_is_corrected_when_the_store_is_back() {
    let direct = fresh_pg_database().await;
    let db = direct.rsplit('/').next().unwrap().to_owned();
    // host:port of the test server (`pg_admin_url`).
    let server = pg_admin_url()
        .split('@')
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap()
        .to_owned();
    let (relay, port) = relay::Relay::start(server).await;
    // Plain TCP, so the relay can see which connection is the writer.
    let via = format!("postgres://postgres@127.0.0.1:{port}/{db}?sslmode=disable");
    let mut gw = TestGateway::start_with(Options {
        store: StoreKind::Postgres,
        store_url: Some(via),
        audit_extra: "commit_timeout_ms = 400\ntransaction_timeout_ms = 300\ncheckpoint_interval_ms = 3600000".into(),
        ..Options::default()
    })
    .await;
    let clients = Clients::new(&mut gw);
    assert_eq!(clients.send(Op::ReadAll).await.status, 200, "warm-up");

    // A disclosure in doubt (its batch is one autocommit INSERT).
    relay.arm(relay::Trigger::NextMessage).await;
    let read = clients.send(Op::ReadAll).await;
    assert_eq!(read.status, 503, "{}", read.body);
    assert!(relay.is_down());
    tokio::time::sleep(Duration::from_millis(700)).await;
    relay.heal();
    assert_eq!(clients.send(Op::ReadAll).await.status, 200, "store back");

    // A register change in doubt (its batch is a transaction).
    relay.arm(relay::Trigger::Commit).await;
    let form = "TT-in-doubt".to_owned();
    let consent = clients.send(Op::Consent { form: form.clone() }).await;
    assert_eq!(consent.status, 503, "{}", consent.body);
    tokio::time::sleep(Duration::from_millis(700)).await;
    relay.heal();
    assert_eq!(
        clients.send(Op::ReadFiltered).await.status,
        200,
        "store back"
    );

    let (tmp, _) = gw.stop().await;
    let store = poortwachter::audit::Store::connect(&direct).await.unwrap();
    let rows = store.all_rows().await.unwrap();
    for (a, kind) in [(&read, "request"), (&consent, "register")] {
        let mine: Vec<_> = rows
            .iter()
            .filter(|r| r.request_id == a.request_id)
            .collect();
        let kinds: Vec<(&str, i64)> = mine.iter().map(|r| (r.kind.as_str(), r.status)).collect();
        assert_eq!(kinds.len(), 2, "{kinds:?}");
        let (landed, corr) = (mine[0], mine[1]);
        assert_eq!(landed.kind, kind);
        assert!((200..300).contains(&landed.status), "{kinds:?}");
        assert_eq!(
            (corr.kind.as_str(), corr.status, corr.reason.as_str()),
            ("correction", 503, "not-delivered")
        );
        let d: Value = serde_json::from_str(&corr.detail).unwrap();
        assert_eq!(d["corrects"]["seq"], landed.seq);
        assert_eq!(d["register_change_undone"], kind == "register");
        assert_eq!(corr.pupil, landed.pupil);
    }
    let left: i64 = sqlx::query("SELECT count(*) FROM consents WHERE form_reference = $1")
        .bind(&form)
        .fetch_one(store.pool())
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        left, 0,
        "the consent the school was told did not happen is undone"
    );

    // The pupil's inzage does not list the disclosure that never left.
    let cfg = poortwachter::config::Config::load(&tmp.path().join("poortwachter.toml")).unwrap();
    let set = poortwachter::policy::load_dir(std::path::Path::new(POLICIES)).unwrap();
    let pseudo = poortwachter::audit::Pseudonymiser::from_file(&cfg.audit.pseudonym_key).unwrap();
    let opts = poortwachter::review::inzage::Options {
        include_denied: false,
    };
    let report = poortwachter::review::inzage::build(&store, &set, &pseudo, "L1001", opts)
        .await
        .unwrap();
    let listed: Vec<&str> = report
        .disclosures
        .iter()
        .map(|d| d.record.as_str())
        .collect();
    let never = rows
        .iter()
        .find(|r| r.request_id == read.request_id)
        .unwrap();
    assert!(
        !listed.contains(&format!("{}#{}", never.instance, never.seq).as_str()),
        "{listed:?}"
    );
    assert_eq!(
        listed.len(),
        3,
        "warm-up, the read after the store was back, and the filtered read: {listed:?}"
    );
}
