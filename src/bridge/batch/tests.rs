//! The inbox drained into batches, record by record.

use super::super::records::Batch;
use super::*;
use crate::core::body::BodyKind;
use crate::core::config::JsonCalls;

/// `(kind, ticket, body)` of every record in a batch.
fn records(mut buf: &[u8]) -> Vec<(u8, u32, Vec<u8>)> {
    let mut out = Vec::new();
    while buf.len() >= RECORD_HEADER {
        let word = |i: usize| u32::from_le_bytes([buf[i], buf[i + 1], buf[i + 2], buf[i + 3]]);
        let (kind, ticket) = (buf[RECORD_KIND], word(RECORD_TICKET));
        let len = word(RECORD_LENGTH) as usize;
        out.push((
            kind,
            ticket,
            buf[RECORD_HEADER..RECORD_HEADER + len].to_vec(),
        ));
        buf = &buf[RECORD_HEADER + len..];
    }
    out
}

fn chunk(ticket: u32, text: &str) -> Job {
    Job::Body(ticket, Pulled::Chunk(Bytes::from(text.to_owned())))
}

#[test]
fn a_batch_holding_chunks_stops_before_the_js_buffer_is_full_and_the_rest_follows() {
    let inbox = Inbox::new();
    let read = "r".repeat(64 * 1024); // one body read
    for i in 0..24 {
        assert!(inbox.sender.send(chunk(1 + i % 2, &read)).is_ok());
    }
    assert!(inbox.sender.send(Job::Resume(9)).is_ok());
    let mut sizes = Vec::new();
    let mut bytes = 0;
    let mut resumed = false;
    loop {
        let mut batch = Batch::default();
        if let Polled::Idle = inbox.poll(&mut batch) {
            break;
        }
        let out = batch.to_vec();
        assert!(
            out.len() <= BATCH_BUFFER,
            "{} bytes: fits JS's buffer",
            out.len()
        );
        sizes.push(out.len());
        for (kind, _, body) in records(&out) {
            bytes += body.len();
            resumed |= kind == KIND_RESUME;
        }
    }
    assert_eq!(bytes, 24 * read.len(), "every chunk arrives");
    assert!(resumed);
    assert!(
        sizes.len() >= 3,
        "{sizes:?}: 1.5 MiB of chunks in batches under 120 KiB"
    );
}

#[test]
fn a_bodys_chunks_go_out_as_one_record_and_before_its_end() {
    let inbox = Inbox::new();
    for job in [
        chunk(1, "ab"),
        chunk(2, "x"),
        chunk(1, "cd"),
        Job::Body(1, Pulled::End),
        chunk(2, "y"),
        Job::Resume(3),
        chunk(2, "z"),
    ] {
        assert!(inbox.sender.send(job).is_ok());
    }
    let mut batch = Batch::default();
    assert!(inbox.drain(&mut batch), "the batch holds chunks");
    let out = batch.to_vec();
    assert_eq!(
        records(&out),
        vec![
            (KIND_BODY_CHUNK, 1, b"abcd".to_vec()),
            (KIND_BODY_END, 1, Vec::new()),
            (KIND_RESUME, 3, Vec::new()),
            (KIND_BODY_CHUNK, 2, b"xyz".to_vec()),
        ]
    );
}

/// A call as the HTTP worker submits it, its body looked at by `json_calls`.
fn call(ticket: u32, body_kind: BodyKind, body: &[u8], json_calls: JsonCalls) -> Job {
    let meta = Arc::new(RequestMeta {
        method: http::Method::POST,
        url: "/".into(),
        path: "/".into(),
        request_id: String::new(),
        headers: http::HeaderMap::new(),
    });
    let (reply, _) = oneshot::channel();
    let call = Call {
        kind: Kind::Task,
        handler: 9,
        body_kind,
        json_text: body_kind == BodyKind::Json && json_calls.reads_as_json(body),
        body: Bytes::copy_from_slice(body),
        body_stream: None,
        meta,
        reply,
        load: None,
    };
    Job::Call(ticket, call, None)
}

#[test]
fn small_json_bodies_are_joined_into_one_array_at_the_end_of_the_batch() {
    let large = format!("{{\"pad\":\"{}\"}}", "x".repeat(JOINED_BELOW));
    let jobs = |json_calls| {
        [
            call(1, BodyKind::Json, br#"{"input":{"a":1}}"#, json_calls),
            call(2, BodyKind::Json, b"{not json", json_calls),
            call(3, BodyKind::Json, b"", json_calls),
            call(4, BodyKind::Json, large.as_bytes(), json_calls),
            call(5, BodyKind::Raw, b"", json_calls),
            call(
                6,
                BodyKind::Json,
                " [1, \"\u{e9}\"] ".as_bytes(),
                json_calls,
            ),
            call(
                7,
                BodyKind::Json,
                br#"{"input":{"__type":"Date","value":"x"}}"#,
                json_calls,
            ),
            Job::Resume(8),
        ]
    };
    let drained = |json_calls| {
        let inbox = Inbox::new();
        for job in jobs(json_calls) {
            assert!(inbox.sender.send(job).is_ok());
        }
        let mut batch = Batch::default();
        assert!(!inbox.drain(&mut batch));
        batch.to_vec()
    };
    let out = drained(JsonCalls::Plain);
    assert_eq!(
        flags(&out),
        [
            FLAG_JOINED,
            0,
            0,
            0,
            BodyKind::Raw as u8,
            FLAG_JOINED,
            FLAG_JOINED,
            0,
            0
        ],
        "only the small, valid JSON bodies are joined; the values record is not ASCII"
    );
    assert_eq!(
        records(&out),
        vec![
            (KIND_TASK, 1, Vec::new()),
            (KIND_TASK, 2, b"{not json".to_vec()),
            (KIND_TASK, 3, Vec::new()),
            (KIND_TASK, 4, large.clone().into_bytes()),
            (KIND_TASK, 5, Vec::new()),
            (KIND_TASK, 6, Vec::new()),
            (KIND_TASK, 7, Vec::new()),
            (KIND_RESUME, 8, Vec::new()),
            (
                KIND_VALUES,
                0,
                "[{\"input\":{\"a\":1}}, [1, \"\u{e9}\"] ,{\"input\":{\"__type\":\"Date\",\"value\":\"x\"}}]"
                    .as_bytes()
                    .to_vec()
            ),
        ]
    );

    // With Runner's serializer, a body holding its markers stays in its
    // record, and a large plain one is flagged as JSON text.
    let out = drained(JsonCalls::RunnerPlain);
    assert_eq!(
        flags(&out),
        [
            FLAG_JOINED,
            0,
            0,
            FLAG_JSON_TEXT,
            BodyKind::Raw as u8,
            FLAG_JOINED,
            0,
            0,
            0
        ],
    );
    assert_eq!(
        records(&out)[6],
        (
            KIND_TASK,
            7,
            br#"{"input":{"__type":"Date","value":"x"}}"#.to_vec()
        )
    );

    // With a serializer of the user's, every body stays in its record.
    let out = drained(JsonCalls::Serializer);
    let kept = records(&out);
    assert_eq!(kept.len(), 8, "no values record");
    assert_eq!(kept[0], (KIND_TASK, 1, br#"{"input":{"a":1}}"#.to_vec()));
    assert!(flags(&out)
        .iter()
        .all(|f| f & (FLAG_JOINED | FLAG_JSON_TEXT) == 0));
}

/// The flags of every record in a batch.
fn flags(out: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    let mut at = 0;
    while at + RECORD_HEADER <= out.len() {
        v.push(out[at + RECORD_FLAGS]);
        let len = &out[at + RECORD_LENGTH..at + RECORD_LENGTH + 4];
        let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]);
        at += RECORD_HEADER + len as usize;
    }
    v
}

#[test]
fn tickets_skip_zero_when_the_counter_wraps() {
    let inbox = Inbox::new();
    assert_eq!(inbox.fresh_ticket(), 1, "the first ticket");
    inbox.next_ticket.store(u32::MAX, Ordering::Relaxed);
    let seen: Vec<u32> = (0..3).map(|_| inbox.fresh_ticket()).collect();
    assert_eq!(seen, [u32::MAX, 1, 2]);
}

#[test]
fn a_poisoned_lock_does_not_stop_the_batches() {
    let inbox = Inbox::new();
    let poisoner = inbox.clone();
    let panicked = std::thread::spawn(move || {
        let _held = poisoner.pending.lock();
        panic!("a panic while the pending map is locked");
    })
    .join();
    assert!(panicked.is_err() && inbox.pending.is_poisoned());
    assert!(inbox.sender.send(Job::Resume(7)).is_ok());
    let mut batch = Batch::default();
    inbox.drain(&mut batch);
    assert_eq!(records(&batch.to_vec()), vec![(KIND_RESUME, 7, Vec::new())]);
}

#[test]
fn a_batch_without_chunks_says_so() {
    let inbox = Inbox::new();
    assert!(inbox.sender.send(Job::Resume(7)).is_ok());
    let mut batch = Batch::default();
    assert!(!inbox.drain(&mut batch));
    assert_eq!(records(&batch.to_vec()), vec![(KIND_RESUME, 7, Vec::new())]);
}
