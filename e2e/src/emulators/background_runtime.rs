//! A tokio runtime of the emulators' own, so they keep serving while the test that started
//! them blocks its thread (e.g. `std::process::Command::output()` on the plugin binary).

use anyhow::{Context, Result};
use tokio::runtime::{Handle, Runtime};

pub struct BackgroundRuntime {
    // Option so Drop can take it: a runtime may not be dropped inside async code,
    // but it may be shut down in the background from anywhere.
    runtime: Option<Runtime>,
}

impl BackgroundRuntime {
    pub fn new() -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("podiam-emulators")
            .enable_all()
            .build()
            .context("starting the emulators' runtime")?;
        Ok(Self {
            runtime: Some(runtime),
        })
    }

    pub fn handle(&self) -> Handle {
        match &self.runtime {
            Some(runtime) => runtime.handle().clone(),
            None => unreachable!("the runtime is only taken on drop"),
        }
    }
}

impl Drop for BackgroundRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
