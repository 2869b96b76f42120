//! Networks on the wire: `network create` bodies in, Docker's network objects out.

use super::time::rfc3339;
use crate::error::{bad_request, ApiResult};
use berth_core::network::Network;
use berth_engine::networks::{CreateNetwork, IpamRequest, NetworkMember};
use bollard_stubs::models as wire;
use serde_json::{json, Map, Value};

/// `POST /networks/create`.
pub fn create_in(body: wire::NetworkCreateRequest) -> ApiResult<CreateNetwork> {
    if body.name.is_empty() {
        return Err(bad_request("network name must not be empty"));
    }
    let ipam = body.ipam.unwrap_or_default();
    Ok(CreateNetwork {
        name: body.name,
        driver: body.driver.unwrap_or_default(),
        internal: body.internal.unwrap_or(false),
        attachable: body.attachable.unwrap_or(false),
        enable_ipv6: body.enable_ipv6.unwrap_or(false),
        ipam_driver: ipam.driver.unwrap_or_default(),
        ipam: ipam
            .config
            .unwrap_or_default()
            .into_iter()
            .map(|c| IpamRequest {
                subnet: c.subnet.unwrap_or_default(),
                ip_range: c.ip_range.unwrap_or_default(),
                gateway: c.gateway.unwrap_or_default(),
            })
            .collect(),
        options: body.options.unwrap_or_default().into_iter().collect(),
        labels: body.labels.unwrap_or_default().into_iter().collect(),
    })
}

/// Docker's network object; `members` fills `Containers` (inspect), `None` leaves it
/// empty (list).
pub fn network_out(n: &Network, members: Option<&[NetworkMember]>) -> Value {
    let config = if n.subnet.is_empty() {
        json!([])
    } else {
        let mut c = Map::new();
        c.insert("Subnet".into(), json!(n.subnet));
        if !n.ip_range.is_empty() {
            c.insert("IPRange".into(), json!(n.ip_range));
        }
        c.insert("Gateway".into(), json!(n.gateway));
        json!([c])
    };
    let mut containers = Map::new();
    for m in members.unwrap_or_default() {
        containers.insert(
            m.container_id.clone(),
            json!({
                "Name": m.name,
                "EndpointID": m.endpoint_id,
                "MacAddress": m.mac,
                "IPv4Address": m.ipv4,
                "IPv6Address": "",
            }),
        );
    }
    // Docker's built-in networks have no IPAM options at all; created ones an empty map.
    let ipam_options = if n.builtin { Value::Null } else { json!({}) };
    json!({
        "Name": n.name,
        "Id": n.id,
        "Created": rfc3339(n.created),
        "Scope": "local",
        "Driver": n.driver,
        "EnableIPv6": false,
        "IPAM": {
            "Driver": "default",
            "Options": ipam_options,
            "Config": config,
        },
        "Internal": n.internal,
        "Attachable": n.attachable,
        "Ingress": false,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": false,
        "Containers": containers,
        "Options": n.options,
        "Labels": n.labels,
    })
}
