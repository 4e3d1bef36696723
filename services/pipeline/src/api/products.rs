//! `ProductService`: see `proto/rapport/pipeline/v1/products.proto`.

use rapport_kit::auth;
use rapport_kit::filter::{Field, FieldKind};
use rapport_kit::idempotency::RequestKey;
use rapport_kit::listing::{ListQuery, ListRequest, ListShape};
use rapport_kit::paging::{SortKey, SortKind};
use rapport_proto::pipeline::v1::product_service_server::ProductService;
use rapport_proto::pipeline::v1::*;
use tonic::{Request, Response, Status};

use super::Api;
use crate::domain::ids::ProductId;
use crate::domain::pipeline::parse_mask;
use crate::domain::product::{PRODUCT_FIELDS, ProductDraft};
use crate::error::Error;
use crate::store::{Write, products as store};

type Result<T> = std::result::Result<Response<T>, Status>;

/// How ListProducts filters, sorts and pages.
const LIST: ListShape<'static> = ListShape {
    filters: &[
        Field { name: "sku", column: "sku", kind: FieldKind::Text },
        Field { name: "name", column: "name", kind: FieldKind::Text },
        Field { name: "active", column: "active", kind: FieldKind::Bool },
        Field { name: "create_time", column: "create_time", kind: FieldKind::Timestamp },
        Field { name: "update_time", column: "update_time", kind: FieldKind::Timestamp },
    ],
    orders: &[
        SortKey { field: "create_time", column: "create_time", kind: SortKind::Timestamp },
        SortKey { field: "update_time", column: "update_time", kind: SortKind::Timestamp },
        SortKey { field: "sku", column: "sku", kind: SortKind::Text },
        SortKey { field: "name", column: "name", kind: SortKind::Text },
    ],
    default_order: "sku",
    default_page_size: 50,
    max_page_size: 500,
    soft_deleted: true,
};

fn product_id(field: &str, raw: &str) -> std::result::Result<ProductId, Error> {
    Ok(ProductId::parse(field, raw)?)
}

impl Api {
    async fn set_product_deleted(
        &self,
        actor: &auth::Principal,
        (id, etag): (&str, &str),
        deleted: bool,
    ) -> Result<Product> {
        let id = product_id("id", id)?;
        let result = store::set_deleted(&self.state.pool, id, etag, deleted, Write::by(actor)).await;
        self.state.written(&result);
        Ok(Response::new(result?))
    }
}

#[tonic::async_trait]
impl ProductService for Api {
    async fn create_product(&self, request: Request<CreateProductRequest>) -> Result<Product> {
        let actor = auth::principal(&request)?.clone();
        let mut request = request.into_inner();
        let input = request.product.clone().unwrap_or_default();
        let draft = ProductDraft::parse(&input, PRODUCT_FIELDS).map_err(Error::from)?;
        let request_id = std::mem::take(&mut request.request_id);
        let key = RequestKey::new(request_id, &request);
        let write = key.write(&actor);
        let created = store::create(&self.state.pool, &draft, write).await;
        self.state.written(&created);
        Ok(Response::new(created?))
    }

    async fn get_product(&self, request: Request<GetProductRequest>) -> Result<Product> {
        let id = product_id("id", &request.get_ref().id)?;
        Ok(Response::new(store::get(&self.state.pool, id).await?))
    }

    async fn update_product(&self, request: Request<UpdateProductRequest>) -> Result<Product> {
        let actor = auth::principal(&request)?.clone();
        let request = request.into_inner();
        let input = request.product.unwrap_or_default();
        let mut violations = Vec::new();
        let id = ProductId::parse("product.id", &input.id).map_err(|v| violations.push(v)).ok();
        let paths = request.update_mask.map(|mask| mask.paths).unwrap_or_default();
        let draft = parse_mask(&paths, PRODUCT_FIELDS)
            .and_then(|fields| ProductDraft::parse(&input, &fields))
            .map_err(|mut found| violations.append(&mut found))
            .ok();
        let (Some(id), Some(draft)) = (id, draft) else { return Err(Error::Invalid(violations).into()) };
        let updated = store::update(&self.state.pool, id, &input.etag, &draft, Write::by(&actor)).await;
        self.state.written(&updated);
        Ok(Response::new(updated?))
    }

    async fn delete_product(&self, request: Request<DeleteProductRequest>) -> Result<Product> {
        let actor = auth::principal(&request)?.clone();
        let request = request.get_ref();
        self.set_product_deleted(&actor, (&request.id, &request.etag), true).await
    }

    async fn undelete_product(&self, request: Request<UndeleteProductRequest>) -> Result<Product> {
        let actor = auth::principal(&request)?.clone();
        let request = request.get_ref();
        self.set_product_deleted(&actor, (&request.id, &request.etag), false).await
    }

    async fn list_products(&self, request: Request<ListProductsRequest>) -> Result<ListProductsResponse> {
        let request = request.get_ref();
        let list = ListRequest {
            filter: &request.filter,
            order_by: &request.order_by,
            page_size: request.page_size,
            page_token: &request.page_token,
            show_deleted: request.show_deleted,
        };
        let query = ListQuery::parse(&list, &LIST).map_err(Error::from)?;
        let (products, next_page_token) = store::list(&self.state.pool, &query).await?;
        Ok(Response::new(ListProductsResponse { products, next_page_token }))
    }
}
