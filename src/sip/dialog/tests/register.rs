//! REGISTER and other non-INVITE dialogs: challenges, granted expiry, unregistering, OPTIONS
//! status, and the caps on long-lived registrations.
use super::*;
use crate::sip::dialog::capped::CAP_REGISTER;

const REG: &str = "REGISTER sip:b.example SIP/2.0";

#[test]
fn register_challenge_then_ok() {
    let contact = "Contact: <sip:alice@10.0.0.1:5060;line=x>;expires=3600";
    let mut f = Flow::new();
    f.add(0, true, sip(REG, "1 REGISTER", "r1", None, false, &[contact]))
        .add(50, false, sip("SIP/2.0 401 Unauthorized", "1 REGISTER", "r1", Some("s1"), false, &["WWW-Authenticate: Digest realm=\"b\""]))
        .add(70, true, sip(REG, "2 REGISTER", "r2", None, false, &[contact, "Authorization: Digest username=\"alice\""]))
        // the registrar lists another device's binding first and grants less than asked
        .add(120, false, sip("SIP/2.0 200 OK", "2 REGISTER", "r2", Some("s2"), false, &["Contact: <sip:alice@192.0.2.9>;expires=55, <sip:alice@10.0.0.1:5060;line=x>;expires=1800"]));
    let d = f.fold();
    assert_eq!(d.kind(), DialogKind::Registration);
    assert_eq!(d.state(), DialogState::Registered);
    assert_eq!(d.register_expires(), Some(1800));
    assert_eq!(d.auth_challenges(), 1);
    assert_eq!(
        d.register_contact(),
        Some("<sip:alice@10.0.0.1:5060;line=x>;expires=3600")
    );
}

#[test]
fn register_expires_from_expires_header() {
    let mut f = Flow::new();
    f.add(
        0,
        true,
        sip(
            REG,
            "5 REGISTER",
            "r1",
            None,
            false,
            &["Contact: <sip:alice@10.0.0.1>", "Expires: 600"],
        ),
    )
    .add(
        20,
        false,
        sip(
            "SIP/2.0 200 OK",
            "5 REGISTER",
            "r1",
            Some("s1"),
            false,
            &["Contact: <sip:alice@10.0.0.1>", "Expires: 300"],
        ),
    );
    let d = f.fold();
    assert_eq!(
        (d.state(), d.register_expires()),
        (DialogState::Registered, Some(300))
    );
}

#[test]
fn register_expires_zero_unregisters() {
    for contact in ["Contact: <sip:alice@10.0.0.1>;expires=0", "Contact: *"] {
        let mut f = Flow::new();
        f.add(
            0,
            true,
            sip(
                REG,
                "9 REGISTER",
                "r1",
                None,
                false,
                &[contact, "Expires: 0"],
            ),
        )
        .add(
            20,
            false,
            sip("SIP/2.0 200 OK", "9 REGISTER", "r1", Some("s1"), false, &[]),
        );
        let d = f.fold();
        assert_eq!(d.state(), DialogState::Unregistered, "{contact}");
        assert_eq!(d.register_expires(), Some(0));
    }
}

#[test]
fn options_state_is_the_status_code() {
    let opt = "OPTIONS sip:b.example SIP/2.0";
    let mut f = Flow::new();
    f.add(0, true, sip(opt, "1 OPTIONS", "o1", None, false, &[]));
    assert_eq!(f.fold().state().to_string(), "in_progress");
    f.add(
        5,
        false,
        sip("SIP/2.0 200 OK", "1 OPTIONS", "o1", Some("s"), false, &[]),
    );
    let d = f.fold();
    assert_eq!(d.kind(), DialogKind::Other);
    assert_eq!(d.state(), DialogState::Final(200));
    assert_eq!(d.state().to_string(), "200");
    let mut g = Flow::new();
    g.add(0, true, sip(opt, "1 OPTIONS", "o1", None, false, &[]))
        .add(
            5,
            false,
            sip(
                "SIP/2.0 404 Not Found",
                "1 OPTIONS",
                "o1",
                Some("s"),
                false,
                &[],
            ),
        );
    assert_eq!(g.fold().state().to_string(), "404");
}

#[test]
fn capped_sets_merge_the_same_in_any_order() {
    let mut f = Flow::new();
    let contact = "Contact: <sip:alice@10.0.0.1>;expires=60";
    for i in 0..40u32 {
        let cseq = format!("{} REGISTER", i + 1);
        let t = i64::from(i) * 60_000;
        f.add(t, true, sip(REG, &cseq, "r", None, false, &[contact]));
        let status = if i % 2 == 0 {
            "SIP/2.0 401 Unauthorized"
        } else {
            "SIP/2.0 200 OK"
        };
        f.add(
            t + 10,
            false,
            sip(status, &cseq, "r", Some("s"), false, &[contact]),
        );
    }
    let d = f.fold();
    assert_eq!(d.register_requests.len(), CAP_REGISTER);
    assert_eq!(
        d.final_response().map(|f| (f.cseq, f.code)),
        Some((40, 200))
    );
    assert_eq!(
        (d.state(), d.register_expires()),
        (DialogState::Registered, Some(60))
    );
    assert_eq!(d.auth_challenges(), 20);
}
