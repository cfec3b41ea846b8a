//! The response status filter (`486` or `4xx`), one type for the queries and the text index:
//! grep and calls check it on messages and dialogs, the index turns it into a term or range.
use std::str::FromStr;

/// One code, or a class (4 = 400..=499).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusFilter {
    Code(u16),
    Class(u8),
}

impl StatusFilter {
    pub fn matches(self, code: u16) -> bool {
        match self {
            StatusFilter::Code(c) => c == code,
            StatusFilter::Class(k) => code / 100 == k as u16,
        }
    }
}

impl FromStr for StatusFilter {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim().to_ascii_lowercase();
        if t.len() == 3 && t.ends_with("xx") {
            if let Some(d) = t.chars().next().and_then(|c| c.to_digit(10)) {
                if (1..=6).contains(&d) {
                    return Ok(StatusFilter::Class(d as u8));
                }
            }
        }
        match t.parse::<u16>() {
            Ok(c) if (100..=699).contains(&c) => Ok(StatusFilter::Code(c)),
            _ => Err(format!(
                "invalid status '{s}': expected a code 100-699 or a class like 4xx"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_filter_accepts_codes_and_classes() {
        assert_eq!("4xx".parse::<StatusFilter>(), Ok(StatusFilter::Class(4)));
        assert_eq!("487".parse::<StatusFilter>(), Ok(StatusFilter::Code(487)));
        assert!("9xx".parse::<StatusFilter>().is_err());
        assert!("42".parse::<StatusFilter>().is_err());
        assert!(StatusFilter::Class(4).matches(487));
        assert!(!StatusFilter::Class(4).matches(500));
    }
}
