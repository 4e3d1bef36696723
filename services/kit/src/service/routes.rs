//! The gRPC services one service serves, with the message size limits
//! applied once and their names taken from the generated code.

use std::convert::Infallible;

use rapport_proto::MessageLimits;
use tonic::body::Body;
use tonic::server::NamedService;
use tonic::service::Routes;

/// The routes of a service under construction (see [`super::Shell::routes`]).
pub struct RouteSet {
    routes: Routes,
    names: Vec<&'static str>,
    max_message_bytes: usize,
}

impl RouteSet {
    /// No routes yet; each added server accepts and sends messages of at
    /// most `max_message_bytes`.
    pub(super) fn new(max_message_bytes: usize) -> RouteSet {
        RouteSet { routes: Routes::default(), names: Vec::new(), max_message_bytes }
    }

    /// Adds a generated server, e.g. `ContactServiceServer::new(api)`.
    pub fn serve<S>(mut self, server: S) -> RouteSet
    where
        S: MessageLimits
            + NamedService
            + tower::Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        self.names.push(S::NAME);
        self.routes = self.routes.add_service(server.with_message_limit(self.max_message_bytes));
        self
    }

    /// The fully-qualified names of the services added, in order.
    pub fn names(&self) -> &[&'static str] {
        &self.names
    }

    pub(super) fn into_parts(self) -> (Routes, Vec<&'static str>) {
        (self.routes, self.names)
    }
}
