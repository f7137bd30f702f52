//! A client given a list of broker nodes connects to one that answers, whichever node
//! the rotation starts at: a dead node in the list costs one refused attempt, not the
//! connection. Needs the RabbitMQ of `AMQP_URL` (scripts/test.sh starts it).

/// A node that refuses every connection (nothing listens on port 1).
const DEAD: &str = "amqp://guest:guest@127.0.0.1:1/%2f";

fn live() -> String {
    std::env::var("AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

#[tokio::test]
async fn with_a_dead_node_in_the_list_every_connection_reaches_the_live_one() {
    let urls = format!("{DEAD},{},{DEAD}", live());
    // Three nodes: three connections start the rotation at each of them once.
    for i in 0..3 {
        let conn = platform::amqp::connect(&urls, "nodes-test")
            .await
            .unwrap_or_else(|e| panic!("connection {i} failed over a live node: {e}"));
        assert!(conn.status().connected());
        let ch = conn
            .create_channel()
            .await
            .expect("a channel on the live node");
        drop(ch.close(200, "done".into()).await);
        drop(conn.close(200, "done".into()).await);
    }
}

#[tokio::test]
async fn with_only_dead_nodes_the_connection_fails() {
    let urls = format!("{DEAD}, amqp://guest:guest@127.0.0.1:2/%2f");
    assert!(platform::amqp::connect(&urls, "nodes-test").await.is_err());
}
