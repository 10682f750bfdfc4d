//! `Accept-Encoding` (RFC 9110 §12.5.3): which content coding a data route sends.
//!
//! [`choose`] reads every `Accept-Encoding` line of a request in place (no
//! allocation) and picks, among the codings a section has, the acceptable one
//! with the highest weight, preferring br, then gzip, then identity on a tie:
//!
//! * no `Accept-Encoding` at all: identity. Any coding would be allowed
//!   (rule 1), but a client that says nothing may not decode (`curl` without
//!   `--compressed`), so it gets the plain body;
//! * a coding listed with `q=0` is refused; `*` weighs every coding not
//!   listed, identity included; `x-gzip` is gzip (§8.4.1.3);
//! * identity is acceptable unless refused by `identity;q=0`, or by `*;q=0`
//!   with no entry for identity (rule 2). Not listed, it comes after every
//!   listed coding: a client that lists `br;q=0.5` wants br;
//! * nothing available is acceptable (identity refused, and the listed
//!   codings unknown, refused or absent): `None`, which the route answers
//!   with 406 Not Acceptable (§15.5.7). §12.5.3 has the server send identity
//!   when no listed coding is available *unless identity is refused*; then
//!   no acceptable representation exists, and the route honours the header
//!   rather than disregard it (§12.1).
//!
//! An element whose weight is not a valid qvalue is ignored, as are unknown
//! codings (`deflate`, `zstd`) and parameters other than `q`.

use axum::http::{HeaderMap, header};

use crate::body::Coding;

/// A qvalue in thousandths: 0 (refused) to 1000.
type Weight = u16;

/// The weight of identity when the request neither lists it nor uses `*`:
/// acceptable, after every listed coding.
const UNLISTED_IDENTITY: Weight = 1;

/// The coding to send for `request`, among those `available` says a section
/// has (identity always should); `None` when none is acceptable (406).
pub(crate) fn choose(request: &HeaderMap, available: impl Fn(Coding) -> bool) -> Option<Coding> {
    let mut lines = request.get_all(header::ACCEPT_ENCODING).iter().peekable();
    if lines.peek().is_none() {
        return available(Coding::Identity).then_some(Coding::Identity);
    }
    Weights::parse(lines.map(|value| value.as_bytes())).best(available)
}

/// The weights a request gives, per coding this crate serves and to `*`.
#[derive(Debug, Default, PartialEq, Eq)]
struct Weights {
    br: Option<Weight>,
    gzip: Option<Weight>,
    identity: Option<Weight>,
    any: Option<Weight>,
}

impl Weights {
    /// Reads every element of every line. A coding listed twice keeps its
    /// highest weight.
    fn parse<'a>(lines: impl Iterator<Item = &'a [u8]>) -> Self {
        let mut weights = Self::default();
        for element in lines.flat_map(|line| line.split(|&b| b == b',')) {
            let Some((coding, weight)) = parse_element(element) else {
                continue;
            };
            let slot = if coding.eq_ignore_ascii_case(b"br") {
                &mut weights.br
            } else if coding.eq_ignore_ascii_case(b"gzip") || coding.eq_ignore_ascii_case(b"x-gzip")
            {
                &mut weights.gzip
            } else if coding.eq_ignore_ascii_case(b"identity") {
                &mut weights.identity
            } else if coding == b"*" {
                &mut weights.any
            } else {
                continue;
            };
            *slot = Some(slot.map_or(weight, |old| old.max(weight)));
        }
        weights
    }

    fn weight(&self, coding: Coding) -> Weight {
        match coding {
            Coding::Br => self.br.or(self.any).unwrap_or(0),
            Coding::Gzip => self.gzip.or(self.any).unwrap_or(0),
            Coding::Identity => self.identity.or(self.any).unwrap_or(UNLISTED_IDENTITY),
        }
    }

    /// The available coding of the highest non-zero weight; on a tie the one
    /// first in [`Coding::ALL`] (br, gzip, identity).
    fn best(&self, available: impl Fn(Coding) -> bool) -> Option<Coding> {
        let mut best: Option<(Weight, Coding)> = None;
        for coding in Coding::ALL {
            let weight = self.weight(coding);
            if weight > 0 && available(coding) && best.is_none_or(|(w, _)| weight > w) {
                best = Some((weight, coding));
            }
        }
        best.map(|(_, coding)| coding)
    }
}

/// `coding [ OWS ";" OWS "q=" qvalue ]` → the coding token and its weight
/// (1000 when unweighted); `None` for an empty element or a bad qvalue.
fn parse_element(element: &[u8]) -> Option<(&[u8], Weight)> {
    let mut parts = element.split(|&b| b == b';');
    let coding = trim(parts.next()?);
    if coding.is_empty() {
        return None;
    }
    let mut weight = 1000;
    for parameter in parts.map(trim) {
        if let Some(value) = parameter
            .strip_prefix(b"q=")
            .or_else(|| parameter.strip_prefix(b"Q="))
        {
            weight = parse_qvalue(value)?;
        }
    }
    Some((coding, weight))
}

/// `qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )` in thousandths.
fn parse_qvalue(value: &[u8]) -> Option<Weight> {
    let (whole, fraction) = match value.split_first()? {
        (b'0', rest) => (0, rest),
        (b'1', rest) => (1000, rest),
        _ => return None,
    };
    let digits = match fraction {
        [] => return Some(whole),
        [b'.', digits @ ..] if digits.len() <= 3 => digits,
        _ => return None,
    };
    let mut thousandths: Weight = 0;
    let mut scale = 100;
    for &digit in digits {
        if !digit.is_ascii_digit() {
            return None;
        }
        thousandths += Weight::from(digit - b'0') * scale;
        scale /= 10;
    }
    match whole {
        0 => Some(thousandths),
        _ if thousandths == 0 => Some(1000),
        _ => None,
    }
}

fn trim(bytes: &[u8]) -> &[u8] {
    let is_space = |b: &u8| *b == b' ' || *b == b'\t';
    let start = bytes
        .iter()
        .position(|b| !is_space(b))
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !is_space(b))
        .map_or(start, |i| i + 1);
    &bytes[start..end]
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    /// The choice for these `Accept-Encoding` lines when every coding is available.
    fn pick(lines: &[&str]) -> Option<Coding> {
        pick_from(lines, &Coding::ALL)
    }

    fn pick_from(lines: &[&str], available: &[Coding]) -> Option<Coding> {
        let mut headers = HeaderMap::new();
        for line in lines {
            headers.append(
                header::ACCEPT_ENCODING,
                HeaderValue::from_str(line).expect("valid header"),
            );
        }
        choose(&headers, |c| available.contains(&c))
    }

    #[test]
    fn qvalues_parse_in_thousandths_and_bad_ones_are_refused() {
        for (text, weight) in [
            ("0", 0),
            ("0.", 0),
            ("0.5", 500),
            ("0.25", 250),
            ("0.125", 125),
            ("0.001", 1),
            ("1", 1000),
            ("1.", 1000),
            ("1.000", 1000),
        ] {
            assert_eq!(parse_qvalue(text.as_bytes()), Some(weight), "{text}");
        }
        for bad in ["", "2", "1.5", "0.1234", "0.5x", ".5", "-0", "1.001", "0,5"] {
            assert_eq!(parse_qvalue(bad.as_bytes()), None, "{bad}");
        }
    }

    #[test]
    fn no_header_gets_identity_and_an_empty_one_too() {
        assert_eq!(pick(&[]), Some(Coding::Identity));
        assert_eq!(pick(&[""]), Some(Coding::Identity));
        assert_eq!(pick(&[" , ,"]), Some(Coding::Identity));
    }

    #[test]
    fn a_single_coding_is_chosen_over_unlisted_identity() {
        assert_eq!(pick(&["gzip"]), Some(Coding::Gzip));
        assert_eq!(pick(&["br"]), Some(Coding::Br));
        assert_eq!(pick(&["x-gzip"]), Some(Coding::Gzip));
        assert_eq!(pick(&["GZip"]), Some(Coding::Gzip));
        assert_eq!(pick(&["br;q=0.1"]), Some(Coding::Br));
    }

    #[test]
    fn weights_decide_and_ties_prefer_br_then_gzip() {
        assert_eq!(pick(&["gzip, br"]), Some(Coding::Br));
        assert_eq!(pick(&["gzip, deflate, br, zstd"]), Some(Coding::Br));
        assert_eq!(pick(&["br;q=0.5, gzip;q=0.8"]), Some(Coding::Gzip));
        assert_eq!(pick(&["br;q=0.8 , gzip ; q=0.8"]), Some(Coding::Br));
        assert_eq!(pick(&["gzip;q=0.5, identity"]), Some(Coding::Identity));
        assert_eq!(
            pick(&["gzip", "br;q=0.9"]),
            Some(Coding::Gzip),
            "lines combine"
        );
        assert_eq!(pick(&["br;q=0, gzip;q=0.2"]), Some(Coding::Gzip));
    }

    #[test]
    fn star_weighs_every_coding_not_listed_identity_included() {
        assert_eq!(pick(&["*"]), Some(Coding::Br));
        assert_eq!(pick(&["br;q=0, *"]), Some(Coding::Gzip));
        assert_eq!(pick(&["br;q=0, gzip;q=0, *"]), Some(Coding::Identity));
        assert_eq!(pick(&["*;q=0.5, identity"]), Some(Coding::Identity));
        assert_eq!(pick(&["*;q=0"]), None, "refuses everything, identity too");
        assert_eq!(pick(&["*;q=0, identity"]), Some(Coding::Identity));
    }

    #[test]
    fn refused_identity_with_nothing_else_acceptable_is_none() {
        assert_eq!(pick(&["identity;q=0"]), None);
        assert_eq!(pick(&["deflate, identity;q=0"]), None);
        assert_eq!(pick(&["gzip;q=0, identity;q=0"]), None);
        assert_eq!(pick(&["identity;q=0, gzip"]), Some(Coding::Gzip));
    }

    #[test]
    fn only_available_codings_are_chosen() {
        let plain = [Coding::Identity];
        assert_eq!(pick_from(&["br, gzip"], &plain), Some(Coding::Identity));
        assert_eq!(pick_from(&["br, identity;q=0"], &plain), None);
        let no_br = [Coding::Gzip, Coding::Identity];
        assert_eq!(pick_from(&["br, gzip;q=0.1"], &no_br), Some(Coding::Gzip));
        assert_eq!(pick_from(&["*"], &no_br), Some(Coding::Gzip));
    }

    #[test]
    fn malformed_elements_are_ignored_not_fatal() {
        assert_eq!(pick(&["br;q=2, gzip"]), Some(Coding::Gzip));
        assert_eq!(pick(&["identity;q=zero"]), Some(Coding::Identity));
        assert_eq!(pick(&[";q=1, gzip;level=9"]), Some(Coding::Gzip));
        assert_eq!(pick(&["br;Q=0.5"]), Some(Coding::Br));
        assert_eq!(
            Weights::parse([&b"gzip;q=0, gzip;q=0.5"[..]].into_iter()).gzip,
            Some(500),
            "a coding listed twice keeps its highest weight"
        );
    }
}
