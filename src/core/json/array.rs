//! The results of several calls, written by JS as one array
//! (`JSON.stringify`), split back into each call's result text.

#![forbid(unsafe_code)]

/// Splits compact JSON array text (`[a,b,...]`, as `JSON.stringify` writes
/// it) into the byte ranges of its elements; `None` when it is not such an
/// array of exactly `count` elements.
pub fn split_array(text: &[u8], count: usize) -> Option<Vec<std::ops::Range<usize>>> {
    let inner_end = text.len().checked_sub(1)?;
    if text.first() != Some(&b'[') || text.get(inner_end) != Some(&b']') {
        return None;
    }
    let mut ranges = Vec::with_capacity(count);
    if inner_end == 1 {
        return (count == 0).then_some(ranges);
    }
    let mut start = 1;
    let mut depth = 0usize;
    let mut in_string = false;
    let mut i = 1;
    while i < inner_end {
        let b = text[i];
        if in_string {
            match b {
                b'\\' => i += 1,
                b'"' => in_string = false,
                _ => {}
            }
        } else {
            match b {
                b'"' => in_string = true,
                b'[' | b'{' => depth += 1,
                b']' | b'}' => depth = depth.checked_sub(1)?,
                b',' if depth == 0 => {
                    if start == i {
                        return None;
                    }
                    ranges.push(start..i);
                    start = i + 1;
                }
                _ => {}
            }
        }
        i += 1;
    }
    if in_string || depth != 0 || start >= inner_end {
        return None;
    }
    ranges.push(start..inner_end);
    (ranges.len() == count).then_some(ranges)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrays_split_into_their_elements() {
        let text = br#"[{"sum":3},"a,]\"}",[1,[2]],null,{"x":{"y":"}"}}]"#;
        let parts: Vec<&[u8]> = split_array(text, 5)
            .expect("five elements")
            .into_iter()
            .map(|r| &text[r])
            .collect();
        assert_eq!(
            parts,
            [
                &br#"{"sum":3}"#[..],
                br#""a,]\"}""#,
                b"[1,[2]]",
                b"null",
                br#"{"x":{"y":"}"}}"#
            ]
        );
        assert_eq!(split_array(b"[]", 0), Some(vec![]));
        assert_eq!(
            split_array(b"[1]", 1),
            Some(std::iter::once(1..2).collect())
        );
    }

    #[test]
    fn arrays_that_do_not_match_are_refused() {
        assert_eq!(split_array(b"[1,2]", 3), None);
        assert_eq!(split_array(b"[1,2]", 1), None);
        assert_eq!(split_array(b"[]", 1), None);
        assert_eq!(split_array(b"", 0), None);
        assert_eq!(split_array(b"[", 0), None);
        assert_eq!(split_array(b"{1}", 1), None);
        assert_eq!(split_array(b"[\"1]", 1), None);
        assert_eq!(split_array(b"[1}]", 1), None);
        assert_eq!(split_array(b"[1,]", 2), None);
        assert_eq!(split_array(b"[,1]", 2), None);
    }
}
