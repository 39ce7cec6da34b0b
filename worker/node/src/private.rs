//! A private chunk output, sent to the friend who asked: encrypted to their
//! devices that have keys, as Element sends; to a client without encryption
//! (which could not read it otherwise) in the clear, as a widget's host does.

use manifest::ids::UserId;
use manifest::private::OUTPUT_EVENT_TYPE;
use matrix_sdk::ruma::api::client::to_device::send_event_to_device;
use matrix_sdk::ruma::serde::Raw;
use matrix_sdk::ruma::to_device::DeviceIdOrAllDevices;
use matrix_sdk::ruma::{OwnedUserId, TransactionId};
use matrix_sdk::Client;
use serde_json::Value;
use std::collections::BTreeMap;

pub async fn send(client: &Client, user: &UserId, content: &Value) -> Result<(), String> {
    let user = OwnedUserId::try_from(user.as_str()).map_err(|e| e.to_string())?;
    let raw: Raw<Value> =
        Raw::from_json(serde_json::value::to_raw_value(content).map_err(|e| e.to_string())?);
    let encryption = client.encryption();
    let devices = encryption
        .get_user_devices(&user)
        .await
        .map_err(|e| e.to_string())?;
    let devices: Vec<_> = devices.devices().collect();
    if !devices.is_empty() {
        let failed = encryption
            .encrypt_and_send_raw_to_device(
                devices.iter().collect(),
                OUTPUT_EVENT_TYPE,
                raw.cast_unchecked(),
                // Every device of theirs (the default strategy, which matrix-sdk does not re-export).
                Default::default(),
            )
            .await
            .map_err(|e| e.to_string())?;
        return match failed.is_empty() {
            true => Ok(()),
            false => Err(format!(
                "{} of their devices could not be reached",
                failed.len()
            )),
        };
    }
    let messages = BTreeMap::from([(
        user,
        BTreeMap::from([(DeviceIdOrAllDevices::AllDevices, raw.cast_unchecked())]),
    )]);
    let request = send_event_to_device::v3::Request::new_raw(
        OUTPUT_EVENT_TYPE.into(),
        TransactionId::new(),
        messages,
    );
    client
        .send(request)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}
