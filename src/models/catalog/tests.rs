//! Tests of [`super`] (`models/catalog.rs`).

use super::*;

#[test]
fn ids_are_unique_and_found() {
    for m in CATALOG {
        assert_eq!(find(m.id).map(|f| f.id), Some(m.id));
        for a in m.aliases {
            assert_eq!(find(a).map(|f| f.id), Some(m.id));
        }
    }
    assert!(find("no-such-model").is_none());
    assert_eq!(find("DEFAULT").map(|m| m.id), Some(DEFAULT_MODEL));
}

#[test]
fn embedded_weights_match_their_hash_length() {
    let m = find(DEFAULT_MODEL).unwrap_or(&CATALOG[0]);
    assert_eq!(m.sha256.len(), 64);
    assert!(matches!(m.weights, WeightsLocation::Embedded(b) if b.len() > 7_000_000));
}

#[test]
fn entries_are_consistent() {
    for m in CATALOG {
        // Downloadable entries must carry a checksum to verify against: the full
        // SHA-256, or the prefix their publisher gives (8 hex digits at least).
        assert!(
            m.url.is_none() || !m.sha256.is_empty() || m.sha256_prefix.len() >= 8,
            "{}",
            m.id
        );
        assert!(
            m.sha256_prefix.bytes().all(|b| b.is_ascii_hexdigit()),
            "{}: sha256 prefix must be hex",
            m.id
        );
        if m.sha256.is_empty() {
            continue;
        }
        assert_eq!(m.sha256.len(), 64, "{}", m.id);
        assert!(
            m.sha256.bytes().all(|b| b.is_ascii_hexdigit()),
            "{}: sha256 must be hex",
            m.id
        );
        match m.weights {
            WeightsLocation::File(name) => assert_eq!(name, m.file_name, "{}", m.id),
            WeightsLocation::Embedded(_) => {
                assert_eq!(m.url, None, "{}: embedded weights need no URL", m.id)
            }
        }
        if let Some(url) = m.url {
            assert!(url.starts_with("https://"), "{}: {url}", m.id);
        }
    }
}
