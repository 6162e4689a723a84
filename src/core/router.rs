//! Where a request goes: the reference parses `req.url` with WHATWG URL rules
//! against `http://localhost`, then splits the pathname under the base path.

#![forbid(unsafe_code)]

use std::borrow::Cow;

/// The target of a request, as the reference's router sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Task(String),
    Event(String),
    Discovery,
    /// Under the base path but not a known target (`/__runner`, `/__runner/x`,
    /// `/__runner/task` without id, an id that fails percent-decoding).
    UnknownUnderBase,
    /// Outside the base path.
    Outside,
}

/// The pathname WHATWG URL parsing gives for a request target resolved
/// against `http://localhost`: backslashes are slashes, a leading `//` starts
/// an authority, query and fragment are dropped, dot segments (also
/// percent-encoded ones) are resolved.
pub fn pathname_of(target: &str) -> String {
    match plain_path(target) {
        Some(path) => path.to_string(),
        None => resolve_path(target),
    }
}

/// [`pathname_of`] the long way, for any target.
fn resolve_path(target: &str) -> String {
    let unified: String = target.replace('\\', "/");
    let mut rest = unified.as_str();
    let lower = rest
        .get(..8)
        .map(|s| s.to_ascii_lowercase())
        .unwrap_or_default();
    if lower.starts_with("http://") {
        rest = &rest[7..];
        rest = skip_authority(rest);
    } else if lower.starts_with("https://") {
        rest = &rest[8..];
        rest = skip_authority(rest);
    } else if let Some(after) = rest.strip_prefix("//") {
        rest = skip_authority(after);
    }
    let end = rest.find(['?', '#']).unwrap_or(rest.len());
    let raw_path = &rest[..end];
    let raw_path = raw_path.strip_prefix('/').unwrap_or(raw_path);

    let mut segments: Vec<&str> = Vec::new();
    let parts: Vec<&str> = raw_path.split('/').collect();
    let last_index = parts.len().saturating_sub(1);
    for (i, segment) in parts.iter().enumerate() {
        let is_last = i == last_index;
        if is_double_dot(segment) {
            segments.pop();
            if is_last {
                segments.push("");
            }
        } else if is_single_dot(segment) {
            if is_last {
                segments.push("");
            }
        } else {
            segments.push(segment);
        }
    }
    let mut out = String::with_capacity(raw_path.len() + 1);
    for segment in &segments {
        out.push('/');
        out.push_str(segment);
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

/// The path of an origin-form target that parsing leaves as it is (the
/// usual case): one slash first, no backslash, no percent sign, no dot
/// segment. One pass over the bytes.
fn plain_path(target: &str) -> Option<&str> {
    let bytes = target.as_bytes();
    if bytes.first() != Some(&b'/') || bytes.get(1) == Some(&b'/') {
        return None;
    }
    let dots = |segment: &[u8]| segment == b"." || segment == b"..";
    let mut segment_start = 1;
    let mut end = bytes.len();
    for (i, &b) in bytes.iter().enumerate().skip(1) {
        match b {
            b'?' | b'#' => {
                end = i;
                break;
            }
            b'\\' | b'%' => return None,
            b'/' => {
                if dots(&bytes[segment_start..i]) {
                    return None;
                }
                segment_start = i + 1;
            }
            _ => {}
        }
    }
    if dots(&bytes[segment_start..end]) {
        return None;
    }
    target.get(..end)
}

fn skip_authority(rest: &str) -> &str {
    match rest.find(['/', '?', '#']) {
        Some(i) if rest.as_bytes()[i] == b'/' => &rest[i..],
        Some(i) => &rest[i..i],
        None => "",
    }
}

fn is_single_dot(segment: &str) -> bool {
    segment == "." || segment.eq_ignore_ascii_case("%2e")
}

fn is_double_dot(segment: &str) -> bool {
    matches!(
        segment.to_ascii_lowercase().as_str(),
        ".." | ".%2e" | "%2e." | "%2e%2e"
    )
}

/// `decodeURIComponent`: every `%XX` decoded, failing on a malformed escape
/// or on bytes that are not valid UTF-8.
pub fn decode_uri_component(input: &str) -> Option<String> {
    if !input.contains('%') {
        return Some(input.to_string());
    }
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hi = bytes.get(i + 1).and_then(|b| (*b as char).to_digit(16))?;
            let lo = bytes.get(i + 2).and_then(|b| (*b as char).to_digit(16))?;
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Routes pathnames under one base path.
#[derive(Debug, Clone)]
pub struct Router {
    base: String,
    base_slash: String,
}

impl Router {
    pub fn new(base_path: &str) -> Self {
        Router {
            base: base_path.to_string(),
            base_slash: format!("{base_path}/"),
        }
    }

    pub fn base_path(&self) -> &str {
        &self.base
    }

    pub fn is_under_base(&self, pathname: &str) -> bool {
        pathname == self.base || pathname.starts_with(&self.base_slash)
    }

    /// Route a pathname (already normalised by [`pathname_of`]).
    pub fn route(&self, pathname: &str) -> Route {
        if !self.is_under_base(pathname) {
            return Route::Outside;
        }
        let rest = pathname[self.base.len()..].trim_start_matches('/');
        // The first non-empty segment is the kind; the id is the segments
        // after it, empty ones left out.
        let (kind, after) = rest.split_once('/').unwrap_or((rest, ""));
        match kind {
            "discovery" => Route::Discovery,
            "task" | "event" => {
                let after = after.trim_start_matches('/');
                let joined = if after.ends_with('/') || after.contains("//") {
                    let segments = after.split('/').filter(|s| !s.is_empty());
                    Cow::Owned(segments.collect::<Vec<_>>().join("/"))
                } else {
                    Cow::Borrowed(after)
                };
                if joined.is_empty() {
                    return Route::UnknownUnderBase;
                }
                match decode_uri_component(&joined) {
                    Some(id) if kind == "task" => Route::Task(id),
                    Some(id) => Route::Event(id),
                    None => Route::UnknownUnderBase,
                }
            }
            _ => Route::UnknownUnderBase,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(target: &str) -> Route {
        Router::new("/__runner").route(&pathname_of(target))
    }

    #[test]
    fn task_and_event_ids_keep_dots() {
        assert_eq!(
            route("/__runner/task/app.tasks.add"),
            Route::Task("app.tasks.add".into())
        );
        assert_eq!(
            route("/__runner/event/app.events.x?y=1"),
            Route::Event("app.events.x".into())
        );
    }

    #[test]
    fn id_segments_are_joined_and_empty_ones_dropped_like_the_reference() {
        assert_eq!(route("/__runner/task//a//b/"), Route::Task("a/b".into()));
        assert_eq!(route("/__runner/task/a/b"), Route::Task("a/b".into()));
        assert_eq!(route("/__runner//event///e.x"), Route::Event("e.x".into()));
        assert_eq!(route("/__runner/task/a/"), Route::Task("a".into()));
        assert_eq!(route("/__runner/task//"), Route::UnknownUnderBase);
        assert_eq!(route("/__runner//task/a"), Route::Task("a".into()));
    }

    #[test]
    fn percent_encoded_slash_is_part_of_the_id() {
        assert_eq!(route("/__runner/task/a%2Fb"), Route::Task("a/b".into()));
        assert_eq!(
            route("/__runner/task/caf%C3%A9"),
            Route::Task("café".into())
        );
    }

    #[test]
    fn bad_percent_encoding_is_unknown_route() {
        assert_eq!(route("/__runner/task/%zz"), Route::UnknownUnderBase);
        assert_eq!(route("/__runner/task/%"), Route::UnknownUnderBase);
        assert_eq!(route("/__runner/task/%FF"), Route::UnknownUnderBase);
        assert_eq!(route("/__runner/task/%ED%A0%80"), Route::UnknownUnderBase);
    }

    #[test]
    fn missing_id_and_unknown_kind_stay_under_base() {
        assert_eq!(route("/__runner/task"), Route::UnknownUnderBase);
        assert_eq!(route("/__runner/task/"), Route::UnknownUnderBase);
        assert_eq!(route("/__runner/tasks/x"), Route::UnknownUnderBase);
        assert_eq!(route("/__runner"), Route::UnknownUnderBase);
        assert_eq!(route("/__runner/"), Route::UnknownUnderBase);
    }

    #[test]
    fn discovery_ignores_extra_segments_like_the_reference() {
        assert_eq!(route("/__runner/discovery"), Route::Discovery);
        assert_eq!(route("/__runner/discovery/x"), Route::Discovery);
    }

    #[test]
    fn outside_base_is_outside() {
        assert_eq!(route("/"), Route::Outside);
        assert_eq!(route("/__runnerx/task/a"), Route::Outside);
        assert_eq!(route("//__runner/task/a"), Route::Outside);
    }

    #[test]
    fn dot_segments_resolve_as_whatwg_url_does() {
        assert_eq!(pathname_of("/x/../__runner/task/a"), "/__runner/task/a");
        assert_eq!(pathname_of("/__runner/task/%2e%2E/a"), "/__runner/a");
        assert_eq!(pathname_of("/a/."), "/a/");
        assert_eq!(pathname_of("/a/.."), "/");
        assert_eq!(pathname_of("/.."), "/");
        assert_eq!(pathname_of("\\__runner\\task\\a"), "/__runner/task/a");
        assert_eq!(
            pathname_of("http://h:1/__runner/task/a?q"),
            "/__runner/task/a"
        );
        assert_eq!(pathname_of("//host/p"), "/p");
        assert_eq!(pathname_of("*"), "/*");
    }

    #[test]
    fn plain_targets_take_the_short_way_to_the_same_pathname() {
        for target in [
            "/",
            "/__runner/task/app.tasks.add",
            "/__runner/task/a?x=1#f",
            "/a//b/",
            "/a/.b/c..",
            "/__runner/event/e#frag",
            "/?q",
            "/a/b.?x=/./",
        ] {
            assert_eq!(plain_path(target), Some(pathname_of(target).as_str()));
            assert_eq!(pathname_of(target), resolve_path(target), "{target}");
        }
        for target in [
            "/a/./b", "/a/../b", "/a/%2e/b", "\\a", "//h/p", "*", "/a/..", "/a/.?x", "/..#f",
        ] {
            assert_eq!(plain_path(target), None, "{target}");
        }
    }
}
