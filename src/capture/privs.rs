//! `-Z USER`: give up root after the interfaces and sockets are open, like tcpdump: supplementary
//! groups, then the group, then the user (in that order, or the later calls are no longer allowed).
use nix::unistd::{setgid, setgroups, setuid, Uid, User};

use super::CaptureError;

pub(crate) fn drop_to(user: &str) -> Result<(), CaptureError> {
    let err = |msg: String| CaptureError::User {
        user: user.into(),
        msg,
    };
    let u = User::from_name(user)
        .map_err(|e| err(format!("looking it up: {e}")))?
        .ok_or_else(|| err("no such user".into()))?;
    if !Uid::effective().is_root() {
        return Err(err("changing user needs root (run without -Z)".into()));
    }
    setgroups(&[u.gid]).map_err(|e| err(format!("setgroups: {e}")))?;
    setgid(u.gid).map_err(|e| err(format!("setgid: {e}")))?;
    setuid(u.uid).map_err(|e| err(format!("setuid: {e}")))?;
    // As root, setuid sets the real, effective and saved ids: there is no way back.
    if setuid(Uid::from_raw(0)).is_ok() && !u.uid.is_root() {
        return Err(err("root could be regained after setuid".into()));
    }
    Ok(())
}
