//! A buyer in a real browser: the whole journey, a declined card then another
//! card, a lost race.

use crate::driver::{Browser, Chromedriver};
use crate::{Cinema, cinema, new_email};
use auth::Role;
use base64::Engine;
use fantoccini::key::Key;
use serde_json::json;
use tests::{SystemOptions, spawn_system};

/// Picks `seats` on the open seat page, continues, registers as a new buyer and
/// waits for the hold (the card chooser).
pub async fn hold_as_new_buyer(b: &Browser, seats: &[&str], who: &str) {
    for s in seats {
        b.click(&format!("button.seat[data-seat='{s}']")).await;
    }
    b.click("#continue").await;
    register_inline(b, who).await;
    b.find("#pay").await;
}

pub async fn register_inline(b: &Browser, who: &str) {
    b.fill("#co-name", "Asha Rao").await;
    b.fill("#co-email", &new_email(who)).await;
    b.fill("#co-password", "correct horse battery").await;
    b.click("#register-form button[type=submit]").await;
}

/// Decodes the QR code in a PNG back to its text.
pub fn decode_qr(png_bytes: &[u8]) -> String {
    let mut dec = png::Decoder::new(std::io::Cursor::new(png_bytes));
    dec.set_transformations(png::Transformations::EXPAND);
    let mut reader = dec.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let (w, h) = (info.width as usize, info.height as usize);
    let channels = buf.len() / (w * h);
    let mut img =
        rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| buf[(y * w + x) * channels]);
    let grids = img.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code in the image");
    grids[0].decode().unwrap().1
}

#[tokio::test]
async fn a_buyer_searches_with_a_typo_picks_two_seats_registers_pays_and_gets_a_ticket_that_verifies()
 {
    let sys = spawn_system(SystemOptions::default()).await;
    let Cinema { movie, show } = cinema(&sys, "Interstellar", "Pune").await;
    cinema(&sys, "Inception", "Pune").await;
    let driver = Chromedriver::start().await;
    let b = driver.browser(&sys.base_url, 1280, 900).await;

    // Home: choose the city, see its movies.
    b.goto("/").await;
    b.fill("#city-input", &format!("Pune{}", Key::Enter)).await;
    b.text_contains("#results", "Interstellar").await;
    b.text_contains("#results", "Inception").await;
    b.screenshot("home").await;

    // Search with a typo still finds it.
    b.fill("#search", &format!("Intersteller{}", Key::Enter))
        .await;
    b.text_contains("main [role=status]", "matching").await;
    let found = b.text_contains("#results", "Interstellar").await;
    assert!(
        !found.contains("Inception"),
        "the search narrowed the list: {found}"
    );
    b.click(&format!("#results a[href='/movies/{movie}']"))
        .await;

    // The movie page lists the show; open its seat map.
    b.text_contains("main", "Galaxy Pune").await;
    b.text_contains(".showtimes", "₹250.00–₹400.00").await;
    b.screenshot("movie").await;
    b.click(&format!("a.time[href='/shows/{show}']")).await;

    // Pick two seats: the running total follows.
    b.click("button.seat[data-seat='E7']").await;
    b.click("button.seat[data-seat='E8']").await;
    b.text_contains("#total", "₹500.00").await;
    assert_eq!(
        b.seat_label("E7").await,
        "Row E, seat 7, regular, ₹250.00, selected"
    );
    assert!(b.seat_label("C7").await.ends_with("not for sale"));
    b.screenshot("seats").await;

    // Register inline, the hold and its countdown, pay with the good test card.
    b.click("#continue").await;
    b.find("#register-form").await;
    b.screenshot("checkout-register").await;
    register_inline(&b, "journey").await;
    b.find("#pay").await;
    b.text_contains("#checkout-status", "E7, E8").await;
    b.text_contains("#countdown", ":").await;
    b.screenshot("checkout-pay").await;
    b.click("input[value=pm_card_ok]").await;
    b.click("#pay").await;

    // The confirmed page shows the ticket's QR code.
    b.text_contains("#booking-status", "Confirmed").await;
    let qr = b.find("#ticket-qr").await;
    b.text_contains("#ticket-seats", "E7, E8").await;
    b.screenshot("ticket").await;
    let src = qr.attr("src").await.unwrap().unwrap();
    let png = base64::engine::general_purpose::STANDARD
        .decode(src.trim_start_matches("data:image/png;base64,"))
        .unwrap();
    let token = decode_qr(&png);

    // The door accepts the ticket the page showed.
    let (_, admin) = sys.user_with_role(Role::Admin).await;
    let res = sys
        .http
        .get(sys.url(&format!("/v1/tickets/verify?token={token}")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    let verdict: serde_json::Value = res.json().await.unwrap();
    assert_eq!(verdict["valid"], json!(true), "{verdict}");
    assert_eq!(verdict["seats"], json!(["E7", "E8"]));
    assert_eq!(verdict["show_id"], json!(show.0.to_string()));
    b.assert_only_own_origin().await;
    b.close().await;
    sys.shutdown().await;
}

#[tokio::test]
async fn a_declined_card_is_said_in_plain_words_and_another_card_confirms_the_booking() {
    let sys = spawn_system(SystemOptions::default()).await;
    let c = cinema(&sys, "Arrival", "Pune").await;
    let driver = Chromedriver::start().await;
    let b = driver.browser(&sys.base_url, 1280, 900).await;
    b.goto(&format!("/shows/{}", c.show)).await;
    hold_as_new_buyer(&b, &["D5"], "decline").await;
    b.click("input[value=pm_card_declined]").await;
    b.click("#pay").await;
    // The decline is said, the seat stays held for the buyer, another card is offered.
    let said = b.text_contains(".panel [role=alert]", "declined").await;
    assert!(said.contains("No money was taken"), "{said}");
    assert!(said.contains("still held"), "{said}");
    b.text_contains("#checkout-status", "D5").await;
    assert!(
        b.seat_label("D5").await.ends_with("held for you"),
        "the seat stays the buyer's"
    );
    let picked = b
        .js(
            "return document.querySelector('input[name=card]:checked').value",
            vec![],
        )
        .await;
    assert_ne!(picked, json!("pm_card_declined"), "another card is picked");
    b.screenshot("declined").await;
    b.click("input[value=pm_card_ok]").await;
    b.click("#pay").await;
    b.text_contains("#booking-status", "Confirmed").await;
    b.text_contains("#ticket-seats", "D5").await;
    b.close().await;
    sys.shutdown().await;
}

#[tokio::test]
async fn two_browsers_race_for_one_seat_and_the_loser_is_told_which_and_sees_it_sold_without_a_reload()
 {
    let sys = spawn_system(SystemOptions::default()).await;
    let c = cinema(&sys, "Dune", "Pune").await;
    let driver = Chromedriver::start().await;
    let (one, two) = tokio::join!(
        driver.browser(&sys.base_url, 1280, 900),
        driver.browser(&sys.base_url, 1280, 900)
    );
    let path = format!("/shows/{}", c.show);
    for (b, who) in [(&one, "racer-one"), (&two, "racer-two")] {
        b.goto(&path).await;
        b.js("window.__sameDocument = true", vec![]).await;
        b.click("button.seat[data-seat='F6']").await;
        b.click("#continue").await;
        b.fill("#co-name", who).await;
        b.fill("#co-email", &new_email(who)).await;
        b.fill("#co-password", "correct horse battery").await;
    }
    // Both press "Create account and continue" at once: both ask for F6.
    let submit = "#register-form button[type=submit]";
    let (a, b) = tokio::join!(one.click(submit), two.click(submit));
    let ((), ()) = (a, b);

    // Exactly one holds the seat; the other is told F6 was taken.
    let outcome = "return document.querySelector('#pay') ? 'held'
        : (document.querySelector('#checkout-error')?.innerText ?? null)";
    let (r1, r2) = tokio::join!(
        one.until("an outcome", outcome, vec![]),
        two.until("an outcome", outcome, vec![])
    );
    let (winner, loser, told) = match (r1.as_str().unwrap(), r2.as_str().unwrap()) {
        ("held", t) if t != "held" => (&one, &two, t.to_owned()),
        (t, "held") if t != "held" => (&two, &one, t.to_owned()),
        other => panic!("exactly one browser must hold F6: {other:?}"),
    };
    assert!(told.contains("Seat F6 was just taken"), "{told}");

    // The winner pays; the loser's map shows F6 sold, on the same document.
    winner.click("#pay").await;
    winner.text_contains("#booking-status", "Confirmed").await;
    loser
        .until(
            "F6 to show sold",
            "return document.querySelector(\"button.seat[data-seat='F6']\")?.getAttribute('aria-label')?.endsWith('sold')",
            vec![],
        )
        .await;
    assert_eq!(
        loser
            .js("return window.__sameDocument === true", vec![])
            .await,
        json!(true),
        "the loser's page was not reloaded"
    );
    loser.screenshot("race-lost").await;
    one.close().await;
    two.close().await;
    sys.shutdown().await;
}
