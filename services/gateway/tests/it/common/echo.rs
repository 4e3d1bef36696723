//! A test backend with every call shape: `kit::testing`'s echo service,
//! served through kit's bootstrap like a real service and reporting what it
//! saw (`x-seen-grpc-timeout`, `x-seen-traceparent`, `x-seen-test`) and who
//! it is (`x-echo-addr`). Special payloads: `fail` answers INVALID_ARGUMENT
//! with a field violation and a custom trailer; `sleep:<ms>` waits first.

use std::net::SocketAddr;

use rapport_kit::testing::echo::Echo;

use super::{Running, base_env};

/// The echo service's name.
pub const SERVICE: &str = rapport_kit::testing::echo::SERVICE;

/// Serves the echo backend on a free port.
pub async fn start() -> Running {
    start_with(SocketAddr::from(([127, 0, 0, 1], 0)), &[]).await
}

/// Serves the echo backend on `addr` (to bring one back on its old port).
pub async fn start_on(addr: SocketAddr) -> Running {
    start_with(addr, &[]).await
}

/// Serves the echo backend on `addr` with `extra` environment pairs,
/// reporting its address.
pub async fn start_with(addr: SocketAddr, extra: &[(&'static str, String)]) -> Running {
    let mut env = base_env();
    for (name, value) in extra {
        env = env.with(name, value.clone());
    }
    let listener = rapport_kit::server::bind(addr).await.unwrap();
    let addr = listener.local_addr().unwrap();
    rapport_kit::testing::echo::serve(listener, &env, Echo::default().reporting(addr)).unwrap()
}
