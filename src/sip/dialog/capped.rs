//! The capped-set lattice primitives the dialog fold is built from: each keeps the k extreme
//! entries of a union, so inserting in any order, or merging in any grouping, gives the same set.
use super::{FinalResponse, Timed};

pub(super) const CAP_CSEQS: usize = 32;
pub(super) const CAP_REGISTER: usize = 8;
pub(super) const CAP_TEXT: usize = 8;
pub(super) const CAP_CHALLENGES: usize = 256;

/// Inserts into a sorted set capped at `cap`, keeping the smallest entries (or the largest with
/// `keep_largest`): the k extreme entries of a union do not depend on insertion order.
pub(super) fn set_insert<T: Ord>(v: &mut Vec<T>, x: T, cap: usize, keep_largest: bool) {
    if let Err(pos) = v.binary_search(&x) {
        v.insert(pos, x);
        if v.len() > cap {
            if keep_largest {
                v.remove(0);
            } else {
                v.pop();
            }
        }
    }
}

/// Per-CSeq earliest time, capped to the smallest CSeqs.
pub(super) fn timed_insert(v: &mut Vec<Timed>, t: Timed) {
    match v.binary_search_by_key(&t.cseq, |e| e.cseq) {
        Ok(i) => v[i].ts_ns = v[i].ts_ns.min(t.ts_ns),
        Err(pos) => {
            v.insert(pos, t);
            v.truncate(CAP_CSEQS);
        }
    }
}

/// One entry per (CSeq, method, code), the earliest (ties by reason text); capped by CSeq.
pub(super) fn final_insert(v: &mut Vec<FinalResponse>, f: FinalResponse, keep_largest: bool) {
    if let Some(e) = v
        .iter_mut()
        .find(|e| e.cseq == f.cseq && e.code == f.code && e.method == f.method)
    {
        if (f.key, &f.reason) < (e.key, &e.reason) {
            *e = f;
        }
        return;
    }
    set_insert(v, f, CAP_CSEQS, keep_largest);
}

/// One entry per CSeq (retransmissions differ only in time), the smallest; latest CSeqs kept.
pub(super) fn per_cseq_insert<T: Ord + Clone>(v: &mut Vec<T>, x: T, cseq: impl Fn(&T) -> u32) {
    if let Some(e) = v.iter_mut().find(|e| cseq(e) == cseq(&x)) {
        if x < *e {
            *e = x;
        }
        return;
    }
    set_insert(v, x, CAP_REGISTER, true);
}

pub(super) fn min_opt<T: Ord>(a: Option<T>, b: Option<T>) -> Option<T> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

pub(super) fn max_opt<T: Ord>(a: Option<T>, b: Option<T>) -> Option<T> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, None) => x,
        (None, y) => y,
    }
}
