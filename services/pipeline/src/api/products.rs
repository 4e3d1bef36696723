//! `ProductService`: see `proto/rapport/pipeline/v1/products.proto`.

use rapport_proto::pipeline::v1::product_service_server::ProductService;
use rapport_proto::pipeline::v1::*;
use tonic::{Request, Response, Status};

use super::Api;

type Result<T> = std::result::Result<Response<T>, Status>;

#[tonic::async_trait]
impl ProductService for Api {
    async fn create_product(&self, _request: Request<CreateProductRequest>) -> Result<Product> {
        Err(super::not_yet("CreateProduct"))
    }

    async fn get_product(&self, _request: Request<GetProductRequest>) -> Result<Product> {
        Err(super::not_yet("GetProduct"))
    }

    async fn update_product(&self, _request: Request<UpdateProductRequest>) -> Result<Product> {
        Err(super::not_yet("UpdateProduct"))
    }

    async fn delete_product(&self, _request: Request<DeleteProductRequest>) -> Result<Product> {
        Err(super::not_yet("DeleteProduct"))
    }

    async fn undelete_product(&self, _request: Request<UndeleteProductRequest>) -> Result<Product> {
        Err(super::not_yet("UndeleteProduct"))
    }

    async fn list_products(&self, _request: Request<ListProductsRequest>) -> Result<ListProductsResponse> {
        Err(super::not_yet("ListProducts"))
    }
}
