//! The store on real files in a temporary directory.

use super::*;
use crate::protocol::SaidKind;

fn line<'a>(room: &'a str, seq: u64, nick: &'a str, text: &'a str) -> NewLine<'a> {
    NewLine {
        room,
        seq,
        at_ms: 1_000 * seq as i64,
        kind: SaidKind::Message,
        nick,
        text,
    }
}

fn texts(lines: &[StoredLine]) -> Vec<&str> {
    lines.iter().map(|l| l.text.as_str()).collect()
}

#[test]
fn lines_survive_a_reopen_and_read_back_in_order() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut store = Store::open(dir.path()).unwrap();
        store
            .append(&[
                line("#lobby", 1, "alice", "one"),
                line("#lobby", 2, "bob", "二"),
            ])
            .unwrap();
        store
            .append(&[line("#rust", 1, "carol", "elsewhere")])
            .unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.last_seq("#lobby").unwrap(), 2);
    assert_eq!(store.last_seq("#nowhere").unwrap(), 0);
    let reader = store.reader().unwrap();
    assert_eq!(texts(&reader.last("#lobby", 2, 50).unwrap()), ["one", "二"]);
    assert_eq!(texts(&reader.last("#lobby", 1, 50).unwrap()), ["one"]);
    assert_eq!(texts(&reader.since("#lobby", 1, 2, 50).unwrap()), ["二"]);
    assert_eq!(reader.last_seq("#rust").unwrap(), Some(1));
}

#[test]
fn a_batch_is_stored_whole_or_not_at_all() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    store.append(&[line("#lobby", 1, "a", "kept")]).unwrap();
    // The second line reuses seq 1: the whole batch is refused, the first line with it.
    let clash = [
        line("#lobby", 2, "a", "lost"),
        line("#lobby", 1, "a", "dup"),
    ];
    assert!(store.append(&clash).is_err());
    let reader = store.reader().unwrap();
    assert_eq!(texts(&reader.last("#lobby", 9, 9).unwrap()), ["kept"]);
}

#[test]
fn one_server_per_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let _first = Store::open(dir.path()).unwrap();
    let second = Store::open(dir.path()).unwrap_err();
    assert!(matches!(second, OpenError::InUse(_)), "{second}");
    assert!(second.to_string().contains("--data-dir"), "{second}");
}

#[test]
fn a_file_that_is_not_a_store_is_refused_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(FILE_NAME), vec![0x5a; 8192]).unwrap();
    let error = Store::open(dir.path()).unwrap_err();
    assert!(matches!(error, OpenError::NotAStore(..)), "{error}");
    assert!(error.to_string().contains("move it aside"), "{error}");
}

#[test]
fn a_store_from_a_newer_tcpchat_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(Store::open(dir.path()).unwrap());
    let conn = Connection::open(dir.path().join(FILE_NAME)).unwrap();
    conn.pragma_update(None, "user_version", SCHEMA_VERSION + 7)
        .unwrap();
    drop(conn);
    let error = Store::open(dir.path()).unwrap_err();
    assert!(
        matches!(error, OpenError::Newer(_, v) if v == SCHEMA_VERSION + 7),
        "{error}"
    );
}

#[test]
fn search_takes_every_word_literally() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    let said = [
        "Rust is great",
        "rust and tokio",
        "今天天气很好",
        "100% sure_thing",
        "a \"quoted\" NEAR(word) OR *star*",
        "'; DROP TABLE lines; --",
    ];
    let lines: Vec<NewLine<'_>> = said
        .iter()
        .enumerate()
        .map(|(i, text)| line("#lobby", i as u64 + 1, "x", text))
        .collect();
    store.append(&lines).unwrap();
    let reader = store.reader().unwrap();
    let mut upkeep = store.upkeep().unwrap();
    // The same answers from the newest lines, scanned, and once they are indexed.
    for indexed in [false, true] {
        if indexed {
            assert_eq!(upkeep.index().unwrap(), said.len());
        }
        let search = |words: &[&str]| {
            texts(&reader.search("#lobby", words, 99, 50).unwrap())
                .into_iter()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            search(&["RUST"]),
            ["rust and tokio", "Rust is great"],
            "newest first, any case (indexed: {indexed})"
        );
        assert_eq!(search(&["rust", "tokio"]), ["rust and tokio"]);
        assert_eq!(
            search(&["天气"]),
            ["今天天气很好"],
            "two characters: scanned"
        );
        assert_eq!(search(&["天气很好"]), ["今天天气很好"]);
        assert_eq!(search(&["%"]), ["100% sure_thing"]);
        assert_eq!(search(&["e_t"]), ["100% sure_thing"], "_ is not a wildcard");
        assert_eq!(search(&["_"]).len(), 1);
        for hostile in [
            "\"quoted\"",
            "NEAR(word)",
            "OR",
            "*star*",
            "DROP TABLE",
            "';",
        ] {
            assert_eq!(
                search(&[hostile]).len(),
                1,
                "{hostile} (indexed: {indexed})"
            );
        }
        assert!(search(&["absent"]).is_empty());
    }
    assert_eq!(store.last_seq("#lobby").unwrap(), 6, "nothing was dropped");
}

#[test]
fn expiry_deletes_by_age_and_by_count_and_the_index_follows() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    let lines: Vec<String> = (1..=10).map(|i| format!("word{i:02}")).collect();
    let batch: Vec<NewLine<'_>> = lines
        .iter()
        .enumerate()
        .map(|(i, text)| line("#lobby", i as u64 + 1, "x", text))
        .collect();
    store.append(&batch).unwrap();
    let mut expirer = store.upkeep().unwrap();
    assert_eq!(
        expirer.index().unwrap(),
        10,
        "expiry takes only indexed lines"
    );
    // Older than 3 s: seq 1 and 2 (at 1 s, 2 s).
    assert_eq!(expirer.expire(3_000, 100).unwrap(), 2);
    // Keep the newest 5 of the 8 left.
    assert_eq!(expirer.expire(0, 5).unwrap(), 3);
    let reader = store.reader().unwrap();
    let left = reader.last("#lobby", 99, 99).unwrap();
    assert_eq!(left.first().map(|l| l.seq), Some(6));
    assert!(
        reader
            .search("#lobby", &["word02"], 99, 9)
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        reader.search("#lobby", &["word07"], 99, 9).unwrap().len(),
        1
    );
    assert_eq!(store.last_seq("#lobby").unwrap(), 10, "numbering goes on");
}

#[test]
fn accounts_and_bans_survive_a_reopen_and_expired_bans_go() {
    let dir = tempfile::tempdir().unwrap();
    let alice = Account {
        key: "alice".into(),
        nick: "Alice".into(),
    };
    {
        let store = Store::open(dir.path()).unwrap();
        let registry = store.registry().unwrap();
        assert!(registry.register(&alice, "$argon2id$x", 1).unwrap());
        assert!(
            !registry.register(&alice, "$argon2id$y", 2).unwrap(),
            "a key is registered once"
        );
        for (target, until_ms) in [("net:10.0.0.0/8", None), ("nick:bob", Some(5_000))] {
            let ban = BanRecord {
                target: target.into(),
                by: "Alice".into(),
                reason: "spam".into(),
                created_ms: 1,
                until_ms,
            };
            registry.ban(&ban).unwrap();
        }
    }
    let store = Store::open(dir.path()).unwrap();
    let registry = store.registry().unwrap();
    assert_eq!(registry.accounts().unwrap(), [alice]);
    assert_eq!(
        registry.hash("alice").unwrap().as_deref(),
        Some("$argon2id$x")
    );
    assert_eq!(registry.hash("bob").unwrap(), None);
    let targets = |bans: Vec<BanRecord>| bans.into_iter().map(|b| b.target).collect::<Vec<_>>();
    assert_eq!(
        targets(registry.bans(4_999).unwrap()),
        ["net:10.0.0.0/8", "nick:bob"]
    );
    assert_eq!(
        targets(registry.bans(5_000).unwrap()),
        ["net:10.0.0.0/8"],
        "ended when its time came"
    );
    assert!(registry.unban("net:10.0.0.0/8").unwrap());
    assert!(!registry.unban("net:10.0.0.0/8").unwrap());
    assert!(registry.bans(5_000).unwrap().is_empty());
}
