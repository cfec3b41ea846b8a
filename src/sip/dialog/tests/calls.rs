//! INVITE dialogs: auth retries, cancel, rejection, forking, re-INVITEs, who hung up, dialogs
//! seen from the middle and retransmissions.
use super::*;

#[test]
fn auth_retry_then_answered() {
    let mut f = Flow::new();
    f.add(0, true, sip(INV, "1 INVITE", "ft", None, false, &[]))
        .add(
            40,
            false,
            sip(
                "SIP/2.0 407 Proxy Authentication Required",
                "1 INVITE",
                "ft",
                Some("px"),
                false,
                &["Proxy-Authenticate: Digest realm=\"b\""],
            ),
        )
        .add(
            45,
            true,
            sip(
                "ACK sip:bob@b.example SIP/2.0",
                "1 ACK",
                "ft",
                Some("px"),
                false,
                &[],
            ),
        )
        .add(
            60,
            true,
            sip(
                INV,
                "2 INVITE",
                "ft",
                None,
                false,
                &["Proxy-Authorization: Digest username=\"alice\""],
            ),
        )
        .add(
            70,
            false,
            sip("SIP/2.0 100 Trying", "2 INVITE", "ft", None, false, &[]),
        )
        .add(
            300,
            false,
            sip(
                "SIP/2.0 180 Ringing",
                "2 INVITE",
                "ft",
                Some("tt"),
                false,
                &[],
            ),
        )
        .add(
            2300,
            false,
            sip(
                "SIP/2.0 200 OK",
                "2 INVITE",
                "ft",
                Some("tt"),
                false,
                &["Contact: <sip:bob@10.0.0.2>"],
            ),
        )
        .add(
            2310,
            true,
            sip(
                "ACK sip:bob@10.0.0.2 SIP/2.0",
                "2 ACK",
                "ft",
                Some("tt"),
                false,
                &[],
            ),
        )
        .add(
            62310,
            true,
            sip(
                "BYE sip:bob@10.0.0.2 SIP/2.0",
                "3 BYE",
                "ft",
                Some("tt"),
                false,
                &[],
            ),
        )
        .add(
            62320,
            false,
            sip("SIP/2.0 200 OK", "3 BYE", "ft", Some("tt"), false, &[]),
        );
    let d = f.fold();
    assert_eq!(d.kind(), DialogKind::Call);
    assert_eq!(d.state(), DialogState::Answered);
    assert_eq!(d.state().to_string(), "answered");
    assert_eq!(d.auth_challenges(), 1);
    assert_eq!(d.messages, 10);
    assert_eq!(d.invite_ns(), Some(0));
    assert_eq!(d.final_response().map(|f| (f.cseq, f.code)), Some((2, 200)));
    // PDD and setup from the credentialed INVITE, not across the 407 round trip
    assert_eq!(ms(d.pdd_ms()), Some(240));
    assert_eq!(ms(d.setup_ms()), Some(2240));
    assert_eq!(d.ack_ns(), Some(2_310_000_000));
    assert_eq!(d.duration_s(), Some(60.01));
    assert_eq!(d.ended_by(), Some(EndedBy::Caller));
    assert_eq!(d.reinvites(), 0);
    let first = d.first.as_ref().unwrap();
    assert_eq!((first.method.as_str(), first.key.cseq), ("INVITE", 1));
    assert_eq!(first.from_user.as_deref(), Some("alice"));
    assert_eq!(first.src_ip.to_string(), CALLER);
}

#[test]
fn cancel_before_answer_is_canceled() {
    let mut f = Flow::new();
    f.add(0, true, sip(INV, "1 INVITE", "ft", None, false, &[]))
        .add(
            10,
            false,
            sip("SIP/2.0 100 Trying", "1 INVITE", "ft", None, false, &[]),
        )
        .add(
            500,
            false,
            sip(
                "SIP/2.0 180 Ringing",
                "1 INVITE",
                "ft",
                Some("tt"),
                false,
                &[],
            ),
        )
        .add(
            3000,
            true,
            sip(
                "CANCEL sip:bob@b.example SIP/2.0",
                "1 CANCEL",
                "ft",
                None,
                false,
                &[],
            ),
        )
        .add(
            3010,
            false,
            sip("SIP/2.0 200 OK", "1 CANCEL", "ft", Some("tt"), false, &[]),
        )
        .add(
            3020,
            false,
            sip(
                "SIP/2.0 487 Request Terminated",
                "1 INVITE",
                "ft",
                Some("tt"),
                false,
                &[],
            ),
        )
        .add(
            3030,
            true,
            sip(
                "ACK sip:bob@b.example SIP/2.0",
                "1 ACK",
                "ft",
                Some("tt"),
                false,
                &[],
            ),
        );
    let d = f.fold();
    assert_eq!(d.state(), DialogState::Canceled);
    assert_eq!(d.cancel_ns(), Some(3_000_000_000));
    assert_eq!(d.final_response().map(|f| f.code), Some(487));
    assert_eq!(d.answer_ns(), None);
    assert_eq!(d.ack_ns(), None, "the ACK of a 487 is not an answer's ACK");
    assert_eq!(ms(d.pdd_ms()), Some(500));
    assert_eq!(d.setup_ms(), None);
}

#[test]
fn rejections_are_failed() {
    for (code, reason) in [
        (486, "Busy Here"),
        (603, "Decline"),
        (503, "Service Unavailable"),
    ] {
        let mut f = Flow::new();
        let status = format!("SIP/2.0 {code} {reason}");
        f.add(0, true, sip(INV, "1 INVITE", "ft", None, false, &[]))
            .add(
                900,
                false,
                sip(&status, "1 INVITE", "ft", Some("tt"), false, &[]),
            )
            .add(
                910,
                true,
                sip(
                    "ACK sip:bob@b.example SIP/2.0",
                    "1 ACK",
                    "ft",
                    Some("tt"),
                    false,
                    &[],
                ),
            );
        let d = f.fold();
        assert_eq!(d.state(), DialogState::Failed, "{code}");
        let fin = d.final_response().unwrap();
        assert_eq!((fin.code, fin.reason.as_str()), (code, reason));
        assert_eq!(ms(d.pdd_ms()), Some(900), "no 18x: PDD runs to the final");
    }
}

#[test]
fn challenge_without_retry_is_failed_and_retry_pending_is_in_progress() {
    let mut f = Flow::new();
    f.add(0, true, sip(INV, "1 INVITE", "ft", None, false, &[]))
        .add(
            40,
            false,
            sip(
                "SIP/2.0 407 Proxy Authentication Required",
                "1 INVITE",
                "ft",
                Some("px"),
                false,
                &[],
            ),
        );
    assert_eq!(f.fold().state(), DialogState::Failed);
    f.add(60, true, sip(INV, "2 INVITE", "ft", None, false, &[]));
    assert_eq!(f.fold().state(), DialogState::InProgress);
}

#[test]
fn forked_provisionals_count_once() {
    let mut f = Flow::new();
    f.add(0, true, sip(INV, "1 INVITE", "ft", None, false, &[]))
        .add(
            200,
            false,
            sip(
                "SIP/2.0 180 Ringing",
                "1 INVITE",
                "ft",
                Some("fork-a"),
                false,
                &[],
            ),
        )
        .add(
            250,
            false,
            sip(
                "SIP/2.0 180 Ringing",
                "1 INVITE",
                "ft",
                Some("fork-b"),
                false,
                &[],
            ),
        )
        .add(
            4000,
            false,
            sip(
                "SIP/2.0 200 OK",
                "1 INVITE",
                "ft",
                Some("fork-b"),
                false,
                &[],
            ),
        )
        .add(
            4010,
            true,
            sip(
                "ACK sip:bob@b.example SIP/2.0",
                "1 ACK",
                "ft",
                Some("fork-b"),
                false,
                &[],
            ),
        );
    let d = f.fold();
    assert_eq!(d.provisionals.len(), 1);
    assert_eq!(ms(d.pdd_ms()), Some(200));
    assert_eq!(d.state(), DialogState::Answered);
    assert_eq!(ms(d.setup_ms()), Some(4000));
}

#[test]
fn reinvite_outcomes_do_not_change_the_call() {
    let mut f = Flow::new();
    f.add(0, true, sip(INV, "1 INVITE", "ft", None, false, &[]))
        .add(
            1000,
            false,
            sip("SIP/2.0 200 OK", "1 INVITE", "ft", Some("tt"), false, &[]),
        )
        .add(
            1010,
            true,
            sip(
                "ACK sip:bob@10.0.0.2 SIP/2.0",
                "1 ACK",
                "ft",
                Some("tt"),
                false,
                &[],
            ),
        )
        // caller's re-INVITE meets glare: 491
        .add(
            5000,
            true,
            sip(INV, "2 INVITE", "ft", Some("tt"), false, &[]),
        )
        .add(
            5010,
            false,
            sip(
                "SIP/2.0 491 Request Pending",
                "2 INVITE",
                "ft",
                Some("tt"),
                false,
                &[],
            ),
        )
        .add(
            5020,
            true,
            sip(
                "ACK sip:bob@10.0.0.2 SIP/2.0",
                "2 ACK",
                "ft",
                Some("tt"),
                false,
                &[],
            ),
        )
        .add(
            7000,
            true,
            sip(INV, "3 INVITE", "ft", Some("tt"), false, &[]),
        )
        .add(
            7010,
            false,
            sip("SIP/2.0 200 OK", "3 INVITE", "ft", Some("tt"), false, &[]),
        )
        // a 488 to a re-INVITE whose request was not captured
        .add(
            8010,
            false,
            sip(
                "SIP/2.0 488 Not Acceptable Here",
                "4 INVITE",
                "ft",
                Some("tt"),
                false,
                &[],
            ),
        )
        .add(
            9000,
            true,
            sip(
                "BYE sip:bob@10.0.0.2 SIP/2.0",
                "5 BYE",
                "ft",
                Some("tt"),
                false,
                &[],
            ),
        );
    let d = f.fold();
    assert_eq!(d.state(), DialogState::Answered);
    assert_eq!(d.reinvites(), 2);
    let fin = d.final_response().unwrap();
    assert_eq!((fin.cseq, fin.code), (1, 200));
    assert_eq!(d.answer_ns(), Some(1_000_000_000));
    assert_eq!(d.ack_ns(), Some(1_010_000_000));
    assert_eq!(d.duration_s(), Some(8.0));
    // the same without the initial 2xx: the re-INVITE 2xx does not become the answer
    let mut g = Flow::new();
    g.0 =
        f.0.iter()
            .filter(|(ts, ..)| *ts != 1_000_000_000)
            .cloned()
            .collect();
    let d = g.fold();
    assert_eq!(d.answer_ns(), None);
    assert_eq!(
        d.state(),
        DialogState::Answered,
        "re-INVITEs exist only in a confirmed dialog"
    );
}

#[test]
fn bye_from_callee() {
    let mut f = Flow::new();
    f.add(0, true, sip(INV, "1 INVITE", "ft", None, false, &[]))
        .add(
            1000,
            false,
            sip("SIP/2.0 200 OK", "1 INVITE", "ft", Some("tt"), false, &[]),
        )
        .add(
            1010,
            true,
            sip(
                "ACK sip:bob@10.0.0.2 SIP/2.0",
                "1 ACK",
                "ft",
                Some("tt"),
                false,
                &[],
            ),
        )
        .add(
            31000,
            false,
            sip(
                "BYE sip:alice@10.0.0.1 SIP/2.0",
                "1 BYE",
                "ft",
                Some("tt"),
                true,
                &[],
            ),
        )
        .add(
            31010,
            true,
            sip("SIP/2.0 200 OK", "1 BYE", "ft", Some("tt"), true, &[]),
        );
    let d = f.fold();
    assert_eq!(d.ended_by(), Some(EndedBy::Callee));
    assert_eq!(d.duration_s(), Some(30.0));
    assert_eq!(
        d.first.as_ref().unwrap().from_user.as_deref(),
        Some("alice")
    );
}

#[test]
fn dialog_seen_from_the_middle() {
    let mut f = Flow::new();
    f.add(
        1000,
        false,
        sip("SIP/2.0 200 OK", "1 INVITE", "ft", Some("tt"), false, &[]),
    )
    .add(
        1010,
        true,
        sip(
            "ACK sip:bob@10.0.0.2 SIP/2.0",
            "1 ACK",
            "ft",
            Some("tt"),
            false,
            &[],
        ),
    )
    .add(
        21010,
        false,
        sip(
            "BYE sip:alice@10.0.0.1 SIP/2.0",
            "7 BYE",
            "ft",
            Some("tt"),
            true,
            &[],
        ),
    );
    let d = f.fold();
    assert_eq!(d.kind(), DialogKind::Call);
    assert_eq!(d.state(), DialogState::Answered);
    assert_eq!(d.invite_ns(), None);
    assert_eq!((d.setup_ms(), d.pdd_ms()), (None, None));
    assert_eq!(d.duration_s(), Some(20.01));
    assert_eq!(d.ended_by(), Some(EndedBy::Callee));
    // the ACK speaks for the caller side, not the callee's BYE
    let first = d.first.as_ref().unwrap();
    assert_eq!(
        (first.method.as_str(), first.from_user.as_deref()),
        ("ACK", Some("alice"))
    );
}

#[test]
fn retransmissions_count_but_do_not_move_times() {
    let mut f = Flow::new();
    f.add(0, true, sip(INV, "1 INVITE", "ft", None, false, &[]))
        .add(500, true, sip(INV, "1 INVITE", "ft", None, false, &[]))
        .add(
            700,
            false,
            sip(
                "SIP/2.0 180 Ringing",
                "1 INVITE",
                "ft",
                Some("tt"),
                false,
                &[],
            ),
        )
        .add(1500, true, sip(INV, "1 INVITE", "ft", None, false, &[]))
        .add(
            1510,
            false,
            sip(
                "SIP/2.0 180 Ringing",
                "1 INVITE",
                "ft",
                Some("tt"),
                false,
                &[],
            ),
        )
        .add(
            2000,
            false,
            sip("SIP/2.0 200 OK", "1 INVITE", "ft", Some("tt"), false, &[]),
        )
        .add(
            2500,
            false,
            sip("SIP/2.0 200 OK", "1 INVITE", "ft", Some("tt"), false, &[]),
        )
        .add(
            2510,
            true,
            sip(
                "ACK sip:bob@10.0.0.2 SIP/2.0",
                "1 ACK",
                "ft",
                Some("tt"),
                false,
                &[],
            ),
        )
        .add(
            2520,
            true,
            sip(
                "ACK sip:bob@10.0.0.2 SIP/2.0",
                "1 ACK",
                "ft",
                Some("tt"),
                false,
                &[],
            ),
        );
    let d = f.fold();
    assert_eq!(d.messages, 9);
    assert_eq!(d.invite_ns(), Some(0));
    assert_eq!(ms(d.pdd_ms()), Some(700));
    assert_eq!(ms(d.setup_ms()), Some(2000));
    assert_eq!(d.ack_ns(), Some(2_510_000_000));
    assert_eq!(d.invite_finals.len(), 1);
}
