//! CRI requests as a kubelet (or anything that reaches the socket) sends
//! them: protobuf bytes decoded as skiff-cri decodes them, then turned into
//! skiff command lines. No panic; a refusal is INVALID_ARGUMENT naming a
//! field; a command line never carries a NUL (which no exec can pass).
#![no_main]

use std::path::Path;

use k8s_cri::v1::{CreateContainerRequest, RunPodSandboxRequest, UpdateContainerResourcesRequest};
use libfuzzer_sys::fuzz_target;
use prost::Message;
use skiff_cri::convert;
use skiff_cri::error::CriError;

fn check(r: Result<Vec<String>, CriError>) {
    match r {
        Ok(args) => assert!(args.iter().all(|a| !a.contains('\0')), "{args:?}"),
        Err(CriError::InvalidArgument(m)) => assert!(!m.is_empty()),
        Err(e) => panic!("a conversion fails only as InvalidArgument: {e:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, bytes)) = data.split_first() else { return };
    match which % 3 {
        0 => {
            if let Ok(RunPodSandboxRequest { config: Some(c), runtime_handler }) = RunPodSandboxRequest::decode(bytes) {
                check(convert::sandbox_args(&c, &runtime_handler, Path::new("/u")));
            }
        }
        1 => {
            if let Ok(CreateContainerRequest { config: Some(c), .. }) = CreateContainerRequest::decode(bytes) {
                if let Ok(app) = convert::app_name(&c) {
                    check(convert::container_args("sandbox", &c, &app, Some(Path::new("/l/0.log"))));
                }
            }
        }
        _ => {
            if let Ok(UpdateContainerResourcesRequest { linux: Some(l), .. }) = UpdateContainerResourcesRequest::decode(bytes) {
                check(convert::resources(&l));
            }
        }
    }
});
