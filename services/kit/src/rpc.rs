//! gRPC request paths, read by authentication, tracing and metrics alike
//! (below all three).

/// Splits `/pkg.Service/Method` into `("pkg.Service", "Method")`; `None`
/// for anything else (no service, no method, more segments).
pub fn split_path(path: &str) -> Option<(&str, &str)> {
    let (service, method) = path.strip_prefix('/')?.split_once('/')?;
    if service.is_empty() || method.is_empty() || method.contains('/') {
        return None;
    }
    Some((service, method))
}
