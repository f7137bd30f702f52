//! The theater admin: an admin signs in on `/admin`, reads a show's sales, keeps the
//! show at the confirmation, then cancels it; axe-core finds nothing serious.

use crate::access::assert_accessible;
use crate::cinema;
use crate::driver::Chromedriver;
use crate::ops::staff_account;
use tests::{SystemOptions, TestSystem, spawn_system};

async fn show_status(sys: &TestSystem, show: uuid::Uuid) -> String {
    sqlx::query_scalar("select status from shows where id = $1")
        .bind(show)
        .fetch_one(&sys.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn an_admin_reads_a_shows_sales_and_cancels_it_only_after_confirming() {
    let sys = spawn_system(SystemOptions::default()).await;
    let c = cinema(&sys, "Contact", "Pune").await;
    let (email, password) = staff_account(&sys, "admin").await;
    let before = show_status(&sys, c.show.0).await;
    assert_ne!(before, "cancelled");

    let driver = Chromedriver::start().await;
    let b = driver.browser(&sys.base_url, 1280, 1000).await;
    b.goto("/admin").await;
    b.fill("#acc-email", &email).await;
    b.fill("#acc-password", &password).await;
    b.click("form.auth button[type=submit]").await;
    b.text_contains("section[aria-labelledby='adm-theaters']", "Galaxy Pune")
        .await;
    let row = format!("tr[data-show='{}']", c.show);
    b.text_contains(&row, "Contact").await;
    b.click(&format!("{row} button")).await;
    // 8 rows of 14 seats, C7 blocked, nothing sold yet.
    b.text_contains("#sales-revenue", "0 seats sold of 112")
        .await;
    let table = b.text_contains("#show-sales table", "Premium").await;
    assert!(table.contains("All\t112\t0\t0\t111\t1"), "{table}");
    b.screenshot("admin").await;
    assert_accessible(&b, "admin: sales").await;

    // Keeping the show at the confirmation changes nothing.
    b.click("#cancel-show-open").await;
    b.find("dialog[open] #cancel-show-go").await;
    assert_accessible(&b, "admin: cancel confirmation").await;
    b.click("dialog[open] button[value='keep']").await;
    b.until(
        "the dialog to close",
        "return document.querySelector('dialog') === null",
        vec![],
    )
    .await;
    assert_eq!(show_status(&sys, c.show.0).await, before, "kept");

    b.click("#cancel-show-open").await;
    b.click("dialog[open] #cancel-show-go").await;
    b.text_contains("#cancel-outcome", "Cancelled").await;
    assert_eq!(show_status(&sys, c.show.0).await, "cancelled");
    b.text_contains(&row, "Cancelled").await;
    b.close().await;
    sys.shutdown().await;
}
