//! Between the request path and the audit log's writer: each interaction is written, already
//! in the log's compact form ([`Chunk`]), into a chunk of the calling thread's shard, and the
//! writer takes whole chunks (issue "The shared care plan" §4: audited reads ≥ 90 % of
//! unaudited).
//!
//! Why not a channel of records: measured side by side (`benches/side_by_side.sh`, an
//! experiment build), a read whose record was built and dropped at once cost ~5 % over an
//! unaudited read, one whose record crossed a tokio channel to a writer that dropped it ~10 %,
//! and encoding it there another ~2 %: a record of its own per interaction (a name `String`,
//! a share of the patients' `Arc`, a slot of the channel's blocks), carried for 50 ms to
//! another task and freed there, cost more than all the work done with it. Here an
//! interaction is a few dozen bytes appended under an uncontended lock to a buffer that holds
//! a chunk's worth; nothing is allocated or freed per interaction, and the writer only frames
//! the bytes (`[3, agents, t0, records]`).
//!
//! Bounded: past [`QUEUE`] interactions waiting (a share of it per shard), reads wait for the
//! writer to take them (back-pressure, never loss); writes never wait (they are few, and the write pipeline's
//! after-commit step cannot).

use crate::rest::provenance::Attribution;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::{oneshot, Notify};

/// Interactions per chunk (one log row) at most; also the most AuditEvents one row makes, so
/// making a row's AuditEvents is one commit.
pub(super) const CHUNK: usize = super::BATCH;

/// Interactions waiting at most before reads wait for room.
const QUEUE: usize = 65_536;

/// Shards: the threads that record take one each, round-robin, so a lock is rarely contended.
const SHARDS: usize = 16;

/// The first element of a chunk in the current form (see [`Chunk`]): 3 since records may
/// name a version instead of their patients ([`Whose::OfVersion`]); form 2 was the same
/// without that, and still reads.
pub(super) const CHUNK_FORM: i64 = 3;

/// What an interaction was about, as its AuditEvent names it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Named<'a> {
    /// Nothing in particular (a search: its query says what).
    Nothing,
    /// As given (`Goal/7`, `Goal/7/_history/2`).
    Text(&'a str),
    /// `{type}/{id}`, or `{type}/{id}/_history/{version}`: written without building the text.
    Resource(&'a str, &'a str, Option<i64>),
}

/// Whose data an interaction touched.
#[derive(Debug, Clone, Copy)]
pub(super) enum Whose<'a> {
    /// These patients'.
    Patients(&'a [String]),
    /// The patients whose compartments this version of the resource it names
    /// ([`Named::Resource`]) is in: resolved when its AuditEvent is made, not on the read's
    /// path (looking them up there was ~4 % of a read's CPU, measured side by side).
    OfVersion(i64),
}

/// One interaction, borrowed from the request that made it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Interaction<'a> {
    /// R4 restful-interaction code (`read`, `search-type`, …).
    pub subtype: &'static str,
    pub recorded_us: i64,
    pub who: &'a Arc<Attribution>,
    pub whose: Whose<'a>,
    pub what: Named<'a>,
    pub query: Option<&'a str>,
}

/// Up to [`CHUNK`] interactions in the audit log's compact form: `agents` each distinct
/// attribution once, `t0` the first one's time, and `records` the interactions as JSON arrays
/// `[subtype, agent index, patients, what, query, µs after t0]`, comma-separated; for
/// [`Whose::OfVersion`] `patients` is `null` and the version follows, `[…, µs after t0,
/// version]`. The same few
/// agents make nearly every interaction of a chunk, so naming them once halves a read's bytes
/// in the log. [`Chunk::framed`] makes the log entry: `[3, agents, t0, [records]]`.
#[derive(Debug, Default)]
pub(super) struct Chunk {
    agents: Vec<Arc<Attribution>>,
    t0: i64,
    count: usize,
    records: Vec<u8>,
}

/// Bytes reserved for a chunk when it starts: a read's record is ~50 bytes.
const CHUNK_BYTES: usize = CHUNK * 64;

impl Chunk {
    /// How many interactions it holds.
    pub(super) fn len(&self) -> usize {
        self.count
    }

    /// The first interaction's time.
    pub(super) fn t0(&self) -> i64 {
        self.t0
    }

    /// Append `i`.
    pub(super) fn push(&mut self, i: &Interaction<'_>) {
        if self.count == 0 {
            self.t0 = i.recorded_us;
            self.records.reserve(CHUNK_BYTES);
        } else {
            self.records.push(b',');
        }
        let agent = match self
            .agents
            .iter()
            .position(|a| Arc::ptr_eq(a, i.who) || **a == **i.who)
        {
            Some(n) => n,
            None => {
                self.agents.push(Arc::clone(i.who));
                self.agents.len() - 1
            }
        };
        let out = &mut self.records;
        // The subtype is one of the server's own codes: nothing to escape.
        out.extend_from_slice(b"[\"");
        out.extend_from_slice(i.subtype.as_bytes());
        out.extend_from_slice(b"\",");
        number(out, agent as i64);
        out.push(b',');
        match i.whose {
            Whose::Patients(patients) => {
                out.push(b'[');
                for (n, p) in patients.iter().enumerate() {
                    if n > 0 {
                        out.push(b',');
                    }
                    json_string(out, p);
                }
                out.extend_from_slice(b"],");
            }
            Whose::OfVersion(_) => out.extend_from_slice(b"null,"),
        }
        match i.what {
            Named::Nothing => out.extend_from_slice(b"null"),
            Named::Text(text) => json_string(out, text),
            Named::Resource(resource_type, id, version) => {
                // Ids and type names need no escaping, but nothing here relies on it.
                if is_plain(resource_type) && is_plain(id) {
                    out.push(b'"');
                    out.extend_from_slice(resource_type.as_bytes());
                    out.push(b'/');
                    out.extend_from_slice(id.as_bytes());
                    if let Some(v) = version {
                        out.extend_from_slice(b"/_history/");
                        number(out, v);
                    }
                    out.push(b'"');
                } else {
                    let mut name = String::new();
                    name.push_str(resource_type);
                    name.push('/');
                    name.push_str(id);
                    if let Some(v) = version {
                        name.push_str("/_history/");
                        name.push_str(itoa::Buffer::new().format(v));
                    }
                    json_string(out, &name);
                }
            }
        }
        out.push(b',');
        match i.query {
            Some(query) => json_string(out, query),
            None => out.extend_from_slice(b"null"),
        }
        out.push(b',');
        number(out, i.recorded_us.wrapping_sub(self.t0));
        if let Whose::OfVersion(version) = i.whose {
            out.push(b',');
            number(out, version);
        }
        out.push(b']');
        self.count += 1;
    }

    /// The log entry of this chunk: `[3, agents, t0, [records]]`, agents as `[author,
    /// onBehalfOf, transmitter, clientId]`.
    pub(super) fn framed(&self) -> bytes::Bytes {
        let agents: Vec<_> = self
            .agents
            .iter()
            .map(|a| (&a.author, &a.on_behalf_of, &a.transmitter, &a.client_id))
            .collect();
        let mut out = Vec::with_capacity(self.records.len() + 64 + 64 * agents.len());
        out.push(b'[');
        number(&mut out, CHUNK_FORM);
        out.push(b',');
        // Strings and options only: serialising them cannot fail.
        let _ = serde_json::to_writer(&mut out, &agents);
        out.push(b',');
        number(&mut out, self.t0);
        out.extend_from_slice(b",[");
        out.extend_from_slice(&self.records);
        out.extend_from_slice(b"]]");
        bytes::Bytes::from(out)
    }
}

/// Whether `s` can be written between quotes as it is (no quote, backslash or control
/// character).
fn is_plain(s: &str) -> bool {
    s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\')
}

/// `s` as a JSON string.
fn json_string(out: &mut Vec<u8>, s: &str) {
    if is_plain(s) {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        // A `&str` into a `Vec`: cannot fail.
        let _ = serde_json::to_writer(&mut *out, s);
    }
}

fn number(out: &mut Vec<u8>, n: i64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// One shard's chunks: full ones, and the one being filled.
#[derive(Default)]
struct Shard {
    full: Vec<Chunk>,
    open: Chunk,
}

impl Shard {
    fn waiting(&self) -> usize {
        self.full.len() * CHUNK + self.open.len()
    }
}

/// Interactions one shard holds before the reads recording there wait for room: [`QUEUE`]
/// in all.
const SHARD_ROOM: usize = QUEUE / SHARDS;

/// The queue: shards of chunks, and the writer's and the waiting reads' wake-ups. No count is
/// shared by all threads (each shard counts its own under its lock): one written by every
/// read was a cache line both cores fought over.
pub(super) struct AuditQueue {
    shards: Box<[Mutex<Shard>]>,
    /// Wakes the writer: a shard's first interaction after a take, a flush, the trail's end.
    arrived: Notify,
    /// Wakes reads waiting for room.
    room: Notify,
    flushes: Mutex<Vec<oneshot::Sender<()>>>,
    closed: AtomicBool,
    /// The writer has ended (a panic, or its runtime gone): nobody will take what is appended,
    /// so nothing waits for it any more.
    writer_gone: AtomicBool,
}

impl Default for AuditQueue {
    fn default() -> Self {
        AuditQueue {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            arrived: Notify::new(),
            room: Notify::new(),
            flushes: Mutex::default(),
            closed: AtomicBool::new(false),
            writer_gone: AtomicBool::new(false),
        }
    }
}

/// Nothing done under these locks panics (appending bytes, moving chunks); were a holder to
/// panic all the same, its chunk would at worst end in a record cut short, which the log's
/// decoder refuses (the entry is then left in the log and reported), so a poisoned lock is
/// taken as it is.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl AuditQueue {
    /// The calling thread's shard.
    fn shard(&self) -> &Mutex<Shard> {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        thread_local! {
            static SHARD: usize = NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS;
        }
        &self.shards[SHARD.with(|s| *s)]
    }

    /// Append `i` to `shard` (locked), waking the writer if the shard was empty.
    fn push(&self, mut shard: MutexGuard<'_, Shard>, i: &Interaction<'_>) {
        let was_empty = shard.waiting() == 0;
        shard.open.push(i);
        if shard.open.len() >= CHUNK {
            let full = std::mem::take(&mut shard.open);
            shard.full.push(full);
        }
        drop(shard);
        if was_empty {
            self.arrived.notify_one();
        }
    }

    /// Append `i` without waiting.
    pub(super) fn append(&self, i: &Interaction<'_>) {
        self.push(lock(self.shard()), i);
    }

    /// Wait while the calling thread's shard holds [`SHARD_ROOM`] interactions (a read's
    /// back-pressure; what is then appended may pass the bound by the records of the
    /// interactions let through at once, a handful).
    pub(super) async fn room(&self) {
        let slot = self.shard();
        loop {
            let room = self.room.notified();
            tokio::pin!(room);
            {
                let shard = lock(slot);
                if shard.waiting() < SHARD_ROOM || self.writer_gone.load(Ordering::Acquire) {
                    return;
                }
                // Registered before the lock is let go, so a take in between is not missed.
                room.as_mut().enable();
            }
            room.await;
        }
    }

    /// Every chunk waiting, oldest of each shard first.
    pub(super) fn take(&self) -> Vec<Chunk> {
        let mut chunks = Vec::new();
        for shard in self.shards.iter() {
            let mut shard = lock(shard);
            let open = std::mem::take(&mut shard.open);
            chunks.append(&mut shard.full);
            if open.len() > 0 {
                chunks.push(open);
            }
        }
        if !chunks.is_empty() {
            self.room.notify_waiters();
        }
        chunks
    }

    /// Interactions waiting.
    pub(super) fn waiting(&self) -> usize {
        self.shards.iter().map(|s| lock(s).waiting()).sum()
    }

    /// Whether nothing waits: no interaction, no flush.
    pub(super) fn is_empty(&self) -> bool {
        self.waiting() == 0 && lock(&self.flushes).is_empty()
    }

    /// Ask the writer to write everything appended so far; `done` is answered when it has.
    pub(super) fn flush(&self, done: oneshot::Sender<()>) {
        let mut flushes = lock(&self.flushes);
        if self.writer_gone.load(Ordering::Acquire) {
            // Dropped: the flush ends at once, with nothing written.
            tracing::error!("the audit writer has ended; what is queued is not written");
            return;
        }
        flushes.push(done);
        drop(flushes);
        self.arrived.notify_one();
    }

    /// The writer has ended: flushes asked for and reads waiting for room stop waiting, and
    /// later ones do not wait (held in [`WriterAlive`], dropped however the writer ends).
    fn writer_ended(&self) {
        let mut flushes = lock(&self.flushes);
        self.writer_gone.store(true, Ordering::Release);
        flushes.clear();
        drop(flushes);
        self.room.notify_waiters();
    }

    /// The flushes asked for so far (taken before the chunks they cover).
    pub(super) fn take_flushes(&self) -> Vec<oneshot::Sender<()>> {
        std::mem::take(&mut *lock(&self.flushes))
    }

    /// Wait until something may be waiting (a wake-up can come with nothing left to take).
    pub(super) async fn arrival(&self) {
        if self.is_empty() && !self.is_closed() {
            self.arrived.notified().await;
        }
    }

    /// No more interactions will come: the writer takes what is left and ends.
    pub(super) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.arrived.notify_one();
    }

    pub(super) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }
}

/// Held by the writer task: when it is dropped — the writer returned, panicked, or its runtime
/// went away with it — the queue learns that nobody takes from it any more.
pub(super) struct WriterAlive(pub Arc<AuditQueue>);

impl Drop for WriterAlive {
    fn drop(&mut self) {
        if !self.0.is_closed() {
            tracing::error!("the audit writer has ended; interactions are no longer recorded");
        }
        self.0.writer_ended();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::{json, Value};

    /// A read of nothing in particular, by `who`, at `recorded_us`.
    fn a_read(who: &Arc<Attribution>, recorded_us: i64) -> Interaction<'_> {
        Interaction {
            subtype: "read",
            recorded_us,
            who,
            whose: Whose::Patients(&[]),
            what: Named::Nothing,
            query: None,
        }
    }

    fn agent(author: &str) -> Arc<Attribution> {
        Arc::new(Attribution {
            author: author.into(),
            on_behalf_of: None,
            transmitter: "Device/app".into(),
            client_id: Some("app".into()),
        })
    }

    #[test]
    fn a_chunk_is_the_log_entry_form_with_each_agent_once() {
        let (a, b) = (agent("Patient/p1"), agent("Practitioner/d\"1"));
        let a_again = Arc::new((*a).clone());
        let patients = ["p1".to_string(), "p2".to_string()];
        let mut chunk = Chunk::default();
        let base = Interaction {
            subtype: "read",
            recorded_us: 1_000,
            who: &a,
            whose: Whose::Patients(&patients[..1]),
            what: Named::Resource("Goal", "g1", None),
            query: None,
        };
        chunk.push(&base);
        chunk.push(&Interaction {
            subtype: "vread",
            recorded_us: 1_007,
            who: &b,
            what: Named::Resource("Goal", "g1", Some(3)),
            ..base
        });
        chunk.push(&Interaction {
            subtype: "search-type",
            recorded_us: 990,
            who: &a_again,
            whose: Whose::Patients(&patients),
            what: Named::Nothing,
            query: Some("patient=p1&note=\"x\"\n"),
        });
        chunk.push(&Interaction {
            what: Named::Resource("Goal", "we\\ird", None),
            whose: Whose::Patients(&[]),
            ..base
        });
        chunk.push(&Interaction {
            subtype: "read",
            what: Named::Resource("Observation", "o1", None),
            whose: Whose::OfVersion(4),
            ..base
        });
        assert_eq!(chunk.len(), 5);
        let entry: Value = serde_json::from_slice(&chunk.framed()).unwrap();
        assert_eq!(
            entry,
            json!([
                3,
                [
                    ["Patient/p1", null, "Device/app", "app"],
                    ["Practitioner/d\"1", null, "Device/app", "app"]
                ],
                1000,
                [
                    ["read", 0, ["p1"], "Goal/g1", null, 0],
                    ["vread", 1, ["p1"], "Goal/g1/_history/3", null, 7],
                    [
                        "search-type",
                        0,
                        ["p1", "p2"],
                        null,
                        "patient=p1&note=\"x\"\n",
                        -10
                    ],
                    ["read", 0, [], "Goal/we\\ird", null, 0],
                    ["read", 0, null, "Observation/o1", null, 0, 4]
                ]
            ])
        );
        // A name that would need escaping is escaped.
        let mut odd = Chunk::default();
        odd.push(&Interaction {
            what: Named::Resource("Goal", "a\"b", Some(1)),
            ..base
        });
        let entry: Value = serde_json::from_slice(&odd.framed()).unwrap();
        assert_eq!(entry[3][0][3], "Goal/a\"b/_history/1");
    }

    #[tokio::test]
    async fn what_is_appended_is_taken_once_in_full_chunks() {
        let queue = AuditQueue::default();
        let who = agent("Patient/p1");
        let patients = ["p1".to_string()];
        let one = Interaction {
            whose: Whose::Patients(&patients),
            ..a_read(&who, 5)
        };
        assert!(queue.is_empty());
        for _ in 0..CHUNK + 3 {
            queue.room().await;
            queue.append(&one);
        }
        assert_eq!(queue.waiting(), CHUNK + 3);
        // The first append woke the writer; the wake-up is kept until it waits.
        tokio::time::timeout(std::time::Duration::from_secs(1), queue.arrival())
            .await
            .expect("woken");
        let chunks = queue.take();
        assert_eq!(
            chunks.iter().map(Chunk::len).collect::<Vec<_>>(),
            [CHUNK, 3]
        );
        assert_eq!(queue.waiting(), 0);
        assert!(queue.take().is_empty());
        // A flush is something to do.
        let (done, _wait) = oneshot::channel();
        queue.flush(done);
        assert!(!queue.is_empty());
        assert_eq!(queue.take_flushes().len(), 1);
        assert!(queue.is_empty());
    }

    /// A queue whose one shard (the test's thread, and its tasks on a current-thread runtime)
    /// holds its share of the bound, filled with reads by the returned agent.
    fn full_queue() -> (Arc<AuditQueue>, Arc<Attribution>) {
        let queue = Arc::new(AuditQueue::default());
        let who = agent("Patient/p1");
        for _ in 0..SHARD_ROOM {
            queue.append(&a_read(&who, 5));
        }
        (queue, who)
    }

    #[tokio::test]
    async fn a_full_queue_holds_reads_until_the_writer_takes() {
        let (queue, who) = full_queue();
        let one = a_read(&who, 5);
        let waiting = {
            let queue = Arc::clone(&queue);
            let who = Arc::clone(&who);
            tokio::spawn(async move {
                let one = a_read(&who, 6);
                queue.room().await;
                queue.append(&one);
            })
        };
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "a read waits for room");
        assert_eq!(queue.waiting(), SHARD_ROOM);
        let taken: usize = queue.take().iter().map(Chunk::len).sum();
        assert_eq!(taken, SHARD_ROOM);
        tokio::time::timeout(std::time::Duration::from_secs(5), waiting)
            .await
            .expect("room made")
            .unwrap();
        assert_eq!(queue.waiting(), 1);
        // Writes never wait: past the bound they are appended all the same.
        for _ in 0..SHARD_ROOM {
            queue.append(&one);
        }
        assert_eq!(queue.waiting(), SHARD_ROOM + 1);
    }

    #[tokio::test]
    async fn when_the_writer_is_gone_nothing_waits_for_it() {
        let (queue, _) = full_queue();
        let (asked, answered) = oneshot::channel();
        queue.flush(asked);
        let waiting = {
            let queue = Arc::clone(&queue);
            tokio::spawn(async move { queue.room().await })
        };
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert!(!waiting.is_finished(), "a read waits for room");
        drop(WriterAlive(Arc::clone(&queue)));
        let second = std::time::Duration::from_secs(1);
        tokio::time::timeout(second, waiting)
            .await
            .expect("the read goes on")
            .unwrap();
        assert!(
            tokio::time::timeout(second, answered)
                .await
                .expect("ended")
                .is_err(),
            "the flush ends, unanswered"
        );
        let (asked, answered) = oneshot::channel();
        queue.flush(asked);
        assert!(answered.await.is_err(), "a later flush ends at once");
        tokio::time::timeout(second, queue.room())
            .await
            .expect("no wait for room");
    }
}
