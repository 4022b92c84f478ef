/**
 * The example app's operations: each is typed by `npm run codegen` and registered, by hash, as one
 * of the app's trusted documents.
 */
import { graphql } from './gql/index.js';

export const CustomerOverview = graphql(`
  query CustomerOverview($id: ID!) {
    customer(id: $id) {
      id
      name
      country
      segment
      lifetimeValue
      orders(first: 3) {
        totalCount
        nodes {
          id
          orderedAt
          total
          lines {
            quantity
            product {
              name
            }
          }
        }
      }
    }
  }
`);

export const TopProducts = graphql(`
  query TopProducts($first: Int!) {
    products(first: $first, orderBy: { field: LIST_PRICE, direction: DESC }) {
      nodes {
        sku
        name
        listPrice
        category {
          name
        }
      }
    }
  }
`);

export const OrderUpdates = graphql(`
  subscription OrderUpdates($status: OrderStatus) {
    orderChanged(status: $status) {
      operation
      key
      position
      order {
        id
        status
        total
      }
    }
  }
`);
