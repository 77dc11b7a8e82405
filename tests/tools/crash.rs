//! Crash durability (issue 17 §1): a real `coplan serve` process under 64 concurrent writers —
//! creates, If-Match updates, JSON Patches and transactions — is killed with SIGKILL at a
//! random moment, restarted on the same database, and checked against the writers' ledger of
//! every acknowledged write (a 2xx with an ETag):
//!
//! - every acknowledged version is readable (`vread`) with exactly the content sent, and
//!   exactly the body the server answered with; history holds exactly those versions;
//! - a write in flight at the kill is either wholly there or not at all: a transaction's four
//!   entries all or none, an update's version whole or absent (then it counts as written);
//! - the search index agrees with the stored resources: a search by each resource's identifier
//!   and by its latest content finds it, and a search over every resource the test wrote finds
//!   nothing the ledger does not hold;
//! - the server restarts by itself within a bound (SQLite recovers its WAL; no manual step),
//!   and on SQLite `PRAGMA integrity_check` is `ok` after each restart.
//!
//! Short form in `cargo test` (3 kills per backend, the debug binary). Long form by hand, with
//! the release binary: `COPLAN_CRASH_KILLS=20 COPLAN_TEST_BINARY=target/release/coplan
//! cargo test --test tools crash -- --nocapture` (docs/reliability.md). `COPLAN_CRASH_SEED`
//! replays a run's choices (the seed is printed; the kill moment is the machine's).

use super::server_process::{content, Http, NoAnswer, Reply, ServerSpec};
use coplan::testing::{backends, Backend, TestDatabase};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// The identifier system of every resource this test writes; its value is the resource's key.
const SYSTEM: &str = "urn:coplan:crash";
const TYPES: [&str; 2] = ["Patient", "Observation"];

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[allow(clippy::disallowed_methods)] // a test's seed: printed, and replayable by COPLAN_CRASH_SEED
fn seed() -> u64 {
    std::env::var("COPLAN_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(17)
        })
}

fn patient(key: &str, mark: &str) -> Value {
    json!({"resourceType": "Patient", "identifier": [{"system": SYSTEM, "value": key}],
           "active": true, "name": [{"family": "Crash", "given": [mark]}]})
}

fn observation(key: &str, subject: &str, mark: &str) -> Value {
    json!({"resourceType": "Observation", "identifier": [{"system": SYSTEM, "value": key}],
           "status": "final",
           "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}]},
           "subject": {"reference": subject}, "valueString": mark})
}

/// Where a resource type keeps the mark each change rewrites, as a JSON Pointer, and the
/// search that finds a resource by it.
fn mark_path(resource_type: &str) -> (&'static str, &'static str) {
    match resource_type {
        "Patient" => ("/name/0/given/0", "given:exact"),
        _ => ("/valueString", "value-string:exact"),
    }
}

fn mark_of(resource: &Value) -> String {
    let (path, _) = mark_path(resource["resourceType"].as_str().unwrap_or(""));
    resource
        .pointer(path)
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

/// One acknowledged (or, after a restart, adopted) version.
#[derive(Debug)]
struct Version {
    version_id: u64,
    /// What the client sent, without `id` and `meta`.
    expected: Value,
    /// The body the server acknowledged the write with (None: adopted, or not returned).
    acknowledged: Option<Value>,
}

#[derive(Debug)]
struct Tracked {
    resource_type: &'static str,
    id: String,
    key: String,
    versions: Vec<Version>,
}

/// The write a writer had sent when the server died; it may or may not have committed.
#[derive(Debug)]
enum InFlight {
    Create {
        resource_type: &'static str,
        key: String,
        expected: Value,
    },
    Change {
        index: usize,
        version_id: u64,
        expected: Value,
    },
    /// Entries as sent: the Observations' subject is the Patient's `urn:uuid`.
    Transaction {
        entries: Vec<(&'static str, String, Value)>,
    },
}

#[derive(Default, Debug)]
struct Findings {
    lost: Vec<String>,
    orphans: Vec<String>,
    refused: Vec<String>,
    versions_checked: u64,
    adopted: u64,
}

impl Findings {
    fn absorb(&mut self, other: Findings) {
        self.lost.extend(other.lost);
        self.orphans.extend(other.orphans);
        self.refused.extend(other.refused);
        self.versions_checked += other.versions_checked;
        self.adopted += other.adopted;
    }
}

struct Writer {
    number: usize,
    rng: StdRng,
    tracked: Vec<Tracked>,
    in_flight: Option<InFlight>,
    next: u64,
    acknowledged: u64,
    refused: Vec<String>,
}

impl Writer {
    fn fresh_key(&mut self) -> String {
        self.next += 1;
        format!("w{}-{}", self.number, self.next)
    }

    fn fresh_mark(&mut self) -> String {
        self.next += 1;
        format!("m{}-{}", self.number, self.next)
    }

    fn patients(&self) -> Vec<usize> {
        (0..self.tracked.len())
            .filter(|&i| self.tracked[i].resource_type == "Patient")
            .collect()
    }

    /// Write until the server stops answering; `self` keeps what was acknowledged and what was
    /// in flight when it died.
    async fn run(mut self, http: Http) -> Writer {
        loop {
            let choice = self.rng.random_range(0..10);
            let outcome = if self.tracked.is_empty() || choice < 3 {
                self.create(&http).await
            } else if choice < 8 {
                let index = self.rng.random_range(0..self.tracked.len());
                self.change(&http, index, choice < 6).await
            } else {
                self.transaction(&http).await
            };
            match outcome {
                Ok(()) => self.in_flight = None,
                Err(NoAnswer::Connection(_)) => return self,
                Err(NoAnswer::TimedOut(after)) => {
                    self.refused.push(format!("no answer within {after:?}"));
                    return self;
                }
            }
        }
    }

    fn refuse(&mut self, what: &str, reply: &Reply) {
        self.refused.push(format!(
            "{what}: {} {}",
            reply.status,
            String::from_utf8_lossy(&reply.body)
        ));
    }

    async fn create(&mut self, http: &Http) -> Result<(), NoAnswer> {
        let key = self.fresh_key();
        let mark = self.fresh_mark();
        let patients = self.patients();
        let (resource_type, expected) = if patients.is_empty() || self.rng.random_bool(0.5) {
            ("Patient", patient(&key, &mark))
        } else {
            let pick = patients[self.rng.random_range(0..patients.len())];
            let subject = &self.tracked[pick];
            let reference = format!("Patient/{}", subject.id);
            ("Observation", observation(&key, &reference, &mark))
        };
        self.in_flight = Some(InFlight::Create {
            resource_type,
            key: key.clone(),
            expected: expected.clone(),
        });
        let reply = http
            .send_json("POST", &format!("/fhir/{resource_type}"), &[], &expected)
            .await?;
        if reply.status != 201 || reply.etag_version() != Some(1) {
            self.refuse("create", &reply);
            return Ok(());
        }
        let body = reply.json();
        let id = body["id"].as_str().unwrap_or_default().to_string();
        self.acknowledged += 1;
        self.tracked.push(Tracked {
            resource_type,
            id,
            key,
            versions: vec![Version {
                version_id: 1,
                expected,
                acknowledged: Some(body),
            }],
        });
        Ok(())
    }

    /// An If-Match update (`put`) or JSON Patch of a resource this writer owns.
    async fn change(&mut self, http: &Http, index: usize, put: bool) -> Result<(), NoAnswer> {
        let mark = self.fresh_mark();
        let tracked = &self.tracked[index];
        let Some(last) = tracked.versions.last() else {
            return Ok(());
        };
        let (path, _) = mark_path(tracked.resource_type);
        let mut expected = last.expected.clone();
        if let Some(slot) = expected.pointer_mut(path) {
            *slot = json!(mark);
        }
        let url = format!("/fhir/{}/{}", tracked.resource_type, tracked.id);
        let if_match = format!("W/\"{}\"", last.version_id);
        let version_id = last.version_id + 1;
        self.in_flight = Some(InFlight::Change {
            index,
            version_id,
            expected: expected.clone(),
        });
        let reply = if put {
            let mut body = expected.clone();
            body["id"] = json!(tracked.id);
            http.send_json("PUT", &url, &[("if-match", &if_match)], &body)
                .await?
        } else {
            let patch = json!([{"op": "replace", "path": path, "value": mark}]);
            http.send(
                "PATCH",
                &url,
                &[
                    ("content-type", "application/json-patch+json"),
                    ("accept", "application/fhir+json"),
                    ("if-match", &if_match),
                ],
                Some(patch.to_string().into_bytes()),
            )
            .await?
        };
        if reply.status != 200 || reply.etag_version() != Some(version_id) {
            self.refuse(if put { "update" } else { "patch" }, &reply);
            return Ok(());
        }
        self.acknowledged += 1;
        let body = reply.json();
        self.tracked[index].versions.push(Version {
            version_id,
            expected,
            acknowledged: Some(body),
        });
        Ok(())
    }

    /// A transaction: a new Patient (by `urn:uuid`) and three Observations of it.
    async fn transaction(&mut self, http: &Http) -> Result<(), NoAnswer> {
        let uuid = format!(
            "urn:uuid:{:08x}-0000-4000-8000-{:012x}",
            self.number,
            self.next + 1
        );
        let mut entries = Vec::new();
        let key = self.fresh_key();
        let mark = self.fresh_mark();
        entries.push(("Patient", key.clone(), patient(&key, &mark)));
        for _ in 0..3 {
            let key = self.fresh_key();
            let mark = self.fresh_mark();
            entries.push(("Observation", key.clone(), observation(&key, &uuid, &mark)));
        }
        let bundle = json!({"resourceType": "Bundle", "type": "transaction",
            "entry": entries.iter().enumerate().map(|(i, (rt, _, resource))| {
                let mut entry = json!({"resource": resource, "request": {"method": "POST", "url": rt}});
                if i == 0 { entry["fullUrl"] = json!(uuid); }
                entry
            }).collect::<Vec<_>>()});
        self.in_flight = Some(InFlight::Transaction {
            entries: entries.clone(),
        });
        let reply = http
            .send_json(
                "POST",
                "/fhir",
                &[("prefer", "return=representation")],
                &bundle,
            )
            .await?;
        if reply.status != 200 {
            self.refuse("transaction", &reply);
            return Ok(());
        }
        let answer = reply.json();
        let answered = answer["entry"].as_array().cloned().unwrap_or_default();
        let mut made = Vec::new();
        for (answer, (rt, key, sent)) in answered.iter().zip(&entries) {
            let location = answer["response"]["location"].as_str().unwrap_or("");
            let parts: Vec<&str> = location.split('/').collect();
            let id = match parts.as_slice() {
                [_, id, "_history", "1"] => id.to_string(),
                _ => {
                    self.refused
                        .push(format!("transaction entry location {location:?}"));
                    return Ok(());
                }
            };
            made.push((*rt, id, key.clone(), sent.clone(), answer.get("resource")));
        }
        if made.len() != entries.len() {
            self.refused.push(format!("transaction answered {answer}"));
            return Ok(());
        }
        let patient_id = made[0].1.clone();
        for (rt, id, key, mut expected, resource) in made {
            if rt == "Observation" {
                expected["subject"]["reference"] = json!(format!("Patient/{patient_id}"));
            }
            self.tracked.push(Tracked {
                resource_type: rt,
                id,
                key,
                versions: vec![Version {
                    version_id: 1,
                    expected,
                    acknowledged: resource.cloned(),
                }],
            });
        }
        self.acknowledged += 1;
        Ok(())
    }

    /// Check this writer's ledger against the restarted server; adopt an in-flight write that
    /// committed whole; report what is lost and what should not be there.
    async fn verify(&mut self, http: &Http) -> Findings {
        let mut findings = Findings {
            refused: std::mem::take(&mut self.refused),
            ..Findings::default()
        };
        match self.in_flight.take() {
            Some(InFlight::Create {
                resource_type,
                key,
                expected,
            }) => {
                let found = find_by_key(http, resource_type, &key).await;
                match found.as_slice() {
                    [] => {}
                    [resource] if content(resource) == expected => {
                        self.adopt(resource_type, key, resource, expected);
                        findings.adopted += 1;
                    }
                    _ => findings
                        .orphans
                        .push(format!("in-flight create {key}: found {found:?}")),
                }
            }
            Some(InFlight::Change {
                index,
                version_id,
                expected,
            }) => {
                let tracked = &mut self.tracked[index];
                let url = format!("/fhir/{}/{}", tracked.resource_type, tracked.id);
                match http.get(&url).await {
                    Ok(reply) if reply.status == 200 => {
                        let current = reply.json();
                        if version_of(&current) == Some(version_id) {
                            if content(&current) == expected {
                                tracked.versions.push(Version {
                                    version_id,
                                    expected,
                                    acknowledged: None,
                                });
                                findings.adopted += 1;
                            } else {
                                findings.orphans.push(format!(
                                    "{url}: in-flight version {version_id} is not what was sent: {current}"
                                ));
                            }
                        }
                    }
                    other => findings.lost.push(format!("{url}: read {other:?}")),
                }
            }
            Some(InFlight::Transaction { entries }) => {
                let mut found = Vec::new();
                for (rt, key, _) in &entries {
                    found.push(find_by_key(http, rt, key).await);
                }
                let present = found.iter().filter(|f| !f.is_empty()).count();
                if present == entries.len() && found.iter().all(|f| f.len() == 1) {
                    let patient_id = found[0][0]["id"].as_str().unwrap_or("").to_string();
                    for ((rt, key, mut expected), resource) in entries.into_iter().zip(found) {
                        if rt == "Observation" {
                            expected["subject"]["reference"] =
                                json!(format!("Patient/{patient_id}"));
                        }
                        if content(&resource[0]) == expected {
                            self.adopt(rt, key, &resource[0], expected);
                            findings.adopted += 1;
                        } else {
                            findings.orphans.push(format!(
                                "in-flight transaction entry {key} differs: {}",
                                resource[0]
                            ));
                        }
                    }
                } else if present != 0 {
                    findings.orphans.push(format!(
                        "a transaction cut in half: {present} of {} entries are there",
                        entries.len()
                    ));
                }
            }
            None => {}
        }
        for tracked in &self.tracked {
            check_tracked(http, tracked, &mut findings).await;
        }
        findings
    }

    fn adopt(&mut self, resource_type: &'static str, key: String, found: &Value, expected: Value) {
        self.tracked.push(Tracked {
            resource_type,
            id: found["id"].as_str().unwrap_or("").to_string(),
            key,
            versions: vec![Version {
                version_id: version_of(found).unwrap_or(0),
                expected,
                acknowledged: None,
            }],
        });
    }
}

fn version_of(resource: &Value) -> Option<u64> {
    resource["meta"]["versionId"].as_str()?.parse().ok()
}

/// Every resource of `resource_type` a search by this key finds.
async fn find_by_key(http: &Http, resource_type: &str, key: &str) -> Vec<Value> {
    let reply = http
        .get(&format!(
            "/fhir/{resource_type}?identifier={SYSTEM}|{key}&_count=10"
        ))
        .await
        .expect("the restarted server answers");
    assert_eq!(
        reply.status,
        200,
        "{:?}",
        String::from_utf8_lossy(&reply.body)
    );
    resources(&reply.json())
}

fn resources(bundle: &Value) -> Vec<Value> {
    bundle["entry"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .filter(|e| e["search"]["mode"] != "include")
                .map(|e| e["resource"].clone())
                .collect()
        })
        .unwrap_or_default()
}

/// One resource against its ledger entry: current version, every version, history, index.
async fn check_tracked(http: &Http, tracked: &Tracked, findings: &mut Findings) {
    let url = format!("/fhir/{}/{}", tracked.resource_type, tracked.id);
    let Some(last) = tracked.versions.last() else {
        return;
    };
    let current = match http.get(&url).await {
        Ok(reply) if reply.status == 200 => reply.json(),
        other => {
            findings
                .lost
                .push(format!("{url}: current read answered {other:?}"));
            return;
        }
    };
    if version_of(&current) != Some(last.version_id) || content(&current) != last.expected {
        findings.lost.push(format!(
            "{url}: current is {:?}, the ledger's last is version {} {}",
            current, last.version_id, last.expected
        ));
    }
    for version in &tracked.versions {
        findings.versions_checked += 1;
        let reply = http
            .get(&format!("{url}/_history/{}", version.version_id))
            .await;
        let body = match reply {
            Ok(reply) if reply.status == 200 => reply.json(),
            other => {
                findings.lost.push(format!(
                    "{url}/_history/{}: answered {other:?}",
                    version.version_id
                ));
                continue;
            }
        };
        if content(&body) != version.expected {
            findings.lost.push(format!(
                "{url}/_history/{}: {body} is not what was sent: {}",
                version.version_id, version.expected
            ));
        }
        if let Some(acknowledged) = &version.acknowledged {
            if &body != acknowledged {
                findings.lost.push(format!(
                    "{url}/_history/{}: {body} differs from the acknowledged {acknowledged}",
                    version.version_id
                ));
            }
        }
    }
    match http.get(&format!("{url}/_history?_count=1000")).await {
        Ok(reply) if reply.status == 200 => {
            let history = reply.json();
            let mut listed: Vec<u64> = resources(&history).iter().filter_map(version_of).collect();
            listed.sort_unstable();
            let ledger: Vec<u64> = tracked.versions.iter().map(|v| v.version_id).collect();
            if listed != ledger {
                findings.lost.push(format!(
                    "{url}/_history lists versions {listed:?}, the ledger {ledger:?}"
                ));
            }
        }
        other => findings
            .lost
            .push(format!("{url}/_history answered {other:?}")),
    }
    let (_, by_mark) = mark_path(tracked.resource_type);
    let search = format!(
        "/fhir/{}?identifier={SYSTEM}|{}&{by_mark}={}",
        tracked.resource_type,
        tracked.key,
        mark_of(&current)
    );
    match http.get(&search).await {
        Ok(reply) if reply.status == 200 => {
            let found = resources(&reply.json());
            if found.len() != 1 || found[0] != current {
                findings.lost.push(format!(
                    "{search} found {} resources, not exactly {url} as it is",
                    found.len()
                ));
            }
        }
        other => findings.lost.push(format!("{search} answered {other:?}")),
    }
}

/// Every id a search over all the test's resources of `resource_type` finds, page by page.
async fn everything_indexed(http: &Http, resource_type: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut next = Some(format!(
        "/fhir/{resource_type}?identifier={SYSTEM}|&_count=500"
    ));
    while let Some(url) = next.take() {
        let reply = http.get(&url).await.expect("the server answers a search");
        assert_eq!(reply.status, 200, "{url}");
        let bundle = reply.json();
        ids.extend(
            resources(&bundle)
                .iter()
                .filter_map(|r| r["id"].as_str().map(str::to_string)),
        );
        next = bundle["link"].as_array().and_then(|links| {
            links
                .iter()
                .find(|l| l["relation"] == "next")
                .and_then(|l| l["url"].as_str().map(str::to_string))
        });
    }
    ids
}

/// Verify every writer's ledger (concurrently), then that the index holds nothing more than
/// the ledgers; the writers come back with what they adopted.
async fn verify_all(http: &Http, writers: Vec<Writer>) -> (Vec<Writer>, Findings) {
    let mut findings = Findings::default();
    let mut handles = Vec::new();
    for mut writer in writers {
        let http = http.clone();
        handles.push(tokio::spawn(async move {
            let found = writer.verify(&http).await;
            (writer, found)
        }));
    }
    let mut writers = Vec::new();
    for handle in handles {
        let (writer, found) = handle.await.expect("a verifier");
        findings.absorb(found);
        writers.push(writer);
    }
    for resource_type in TYPES {
        let ledger: BTreeSet<&str> = writers
            .iter()
            .flat_map(|w| &w.tracked)
            .filter(|t| t.resource_type == resource_type)
            .map(|t| t.id.as_str())
            .collect();
        let indexed = everything_indexed(http, resource_type).await;
        let mut seen = BTreeMap::new();
        for id in &indexed {
            *seen.entry(id.as_str()).or_insert(0) += 1;
        }
        for (id, times) in &seen {
            if !ledger.contains(id) {
                findings.orphans.push(format!(
                    "{resource_type}/{id} is found but no writer made it"
                ));
            } else if *times > 1 {
                findings
                    .orphans
                    .push(format!("{resource_type}/{id} is found {times} times"));
            }
        }
        for id in &ledger {
            if !seen.contains_key(id) {
                findings.lost.push(format!(
                    "{resource_type}/{id} is stored but a search over all does not find it"
                ));
            }
        }
    }
    (writers, findings)
}

/// `PRAGMA integrity_check` on the SQLite file the server uses (beside it, read-only).
async fn sqlite_integrity(dir: &std::path::Path) -> String {
    use sqlx::Connection;
    let url = format!("sqlite://{}?mode=ro", dir.join("data/coplan.db").display());
    let mut conn = sqlx::SqliteConnection::connect(&url)
        .await
        .expect("open the SQLite file read-only");
    let result: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&mut conn)
        .await
        .expect("integrity_check runs");
    conn.close().await.ok();
    result
}

async fn crash_story(backend: Backend) {
    let kills = setting("COPLAN_CRASH_KILLS", 3);
    let writer_count = setting("COPLAN_CRASH_WRITERS", 64) as usize;
    let longest_run_ms = setting("COPLAN_CRASH_MAX_RUN_MS", 1500);
    let seed = seed();
    eprintln!("crash durability on {backend:?}: seed {seed} (COPLAN_CRASH_SEED replays it)");
    let mut rng = StdRng::seed_from_u64(seed);

    let dir = tempfile::tempdir().expect("tempdir");
    let database = match backend {
        Backend::Sqlite => None,
        Backend::Postgres => Some(TestDatabase::new(Backend::Postgres).await),
    };
    let spec = ServerSpec::new(
        dir.path().to_path_buf(),
        database.as_ref().and_then(|d| d.database_url()),
    );
    let mut writers: Vec<Writer> = (0..writer_count)
        .map(|number| Writer {
            number,
            rng: StdRng::seed_from_u64(seed ^ (number as u64 + 1).wrapping_mul(0x9e37_79b9)),
            tracked: Vec::new(),
            in_flight: None,
            next: 0,
            acknowledged: 0,
            refused: Vec::new(),
        })
        .collect();
    let mut findings = Findings::default();
    let mut slowest_start = Duration::ZERO;
    for round in 0..=kills {
        let (server, took) = spec.start(Duration::from_secs(60)).await;
        slowest_start = slowest_start.max(took);
        let http = Http::new(server.port);
        let (checked, found) = verify_all(&http, writers).await;
        writers = checked;
        findings.absorb(found);
        if backend == Backend::Sqlite {
            let integrity = sqlite_integrity(dir.path()).await;
            if integrity != "ok" {
                findings
                    .lost
                    .push(format!("round {round}: integrity_check says {integrity}"));
            }
        }
        if round == kills {
            break;
        }
        let handles: Vec<_> = writers
            .into_iter()
            .map(|writer| tokio::spawn(writer.run(http.clone())))
            .collect();
        let run = Duration::from_millis(rng.random_range(200..=longest_run_ms.max(201)));
        tokio::time::sleep(run).await;
        server.kill();
        writers = Vec::new();
        for handle in handles {
            writers.push(handle.await.expect("a writer"));
        }
    }

    let acknowledged: u64 = writers.iter().map(|w| w.acknowledged).sum();
    let resources: usize = writers.iter().map(|w| w.tracked.len()).sum();
    eprintln!(
        "crash durability on {backend:?}: {kills} kills (SIGKILL), {writer_count} writers, \
         {acknowledged} writes acknowledged, {resources} resources and {} version checks, \
         {} in-flight writes found committed; lost {}, orphans {}, refused {}; slowest \
         restart to ready {slowest_start:?}",
        findings.versions_checked,
        findings.adopted,
        findings.lost.len(),
        findings.orphans.len(),
        findings.refused.len()
    );
    assert!(acknowledged > 0, "the writers wrote nothing");
    assert!(
        findings.lost.is_empty() && findings.orphans.is_empty() && findings.refused.is_empty(),
        "seed {seed}: lost {:#?}\norphans {:#?}\nrefused {:#?}",
        findings.lost.iter().take(20).collect::<Vec<_>>(),
        findings.orphans.iter().take(20).collect::<Vec<_>>(),
        findings.refused.iter().take(20).collect::<Vec<_>>()
    );
    if let Some(database) = database {
        database.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_writes_survive_sigkill_and_nothing_half_written_appears() {
    for backend in backends() {
        crash_story(backend).await;
    }
}
