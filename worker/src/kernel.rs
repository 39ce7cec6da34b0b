//! Runs one chunk of a WebGPU kernel task through wgpu: the browser's WebGPU
//! in a worker, Vulkan natively (Mesa's lavapipe in tests). The same code and
//! the same WGSL on both, so a kernel is tested without a browser.

use futures_channel::oneshot;
use manifest::kernel::KernelTask;
use wgpu::util::DeviceExt;

/// A GPU to run kernels on.
pub struct Gpu {
    device: wgpu::Device,
    queue: wgpu::Queue,
    /// The adapter's name, for people ("swiftshader", "llvmpipe", a card).
    pub name: String,
}

impl Gpu {
    /// The first adapter the platform offers, or why there is none.
    pub async fn open() -> Result<Gpu, String> {
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
        let adapter = instance
            .request_adapter(&wgpu::RequestAdapterOptions::default())
            .await
            .map_err(|e| format!("no WebGPU adapter on this machine: {e}"))?;
        let name = adapter.get_info().name;
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor::default())
            .await
            .map_err(|e| format!("the GPU refused a device: {e}"))?;
        Ok(Gpu {
            device,
            queue,
            name,
        })
    }

    /// Runs a one-chunk kernel task and returns its output buffer's bytes.
    /// A shader that does not compile, or any other WebGPU validation error,
    /// is an `Err` with WebGPU's message.
    pub async fn run(&self, task: &KernelTask) -> Result<Vec<u8>, String> {
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let output = self.dispatch(task);
        if let Some(error) = scope.pop().await {
            return Err(format!("WebGPU refused the kernel: {error}"));
        }
        read_back(&self.device, &output).await
    }

    /// Records and submits the dispatch; returns the buffer to read back.
    fn dispatch(&self, task: &KernelTask) -> wgpu::Buffer {
        let device = &self.device;
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("potluck kernel"),
            source: wgpu::ShaderSource::Wgsl(task.wgsl.as_str().into()),
        });
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some("potluck kernel"),
            layout: None,
            module: &module,
            entry_point: Some(&task.entry),
            compilation_options: Default::default(),
            cache: None,
        });
        let params: Vec<u8> = task
            .param_words()
            .iter()
            .flat_map(|w| w.to_le_bytes())
            .collect();
        let params = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("params"),
            contents: &params,
            usage: wgpu::BufferUsages::UNIFORM,
        });
        let size = u64::from(task.output_words) * 4;
        let output = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("output"),
            size,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        let readback = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("kernel bindings"),
            layout: &pipeline.get_bind_group_layout(0),
            entries: &[
                wgpu::BindGroupEntry {
                    binding: 0,
                    resource: params.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 1,
                    resource: output.as_entire_binding(),
                },
            ],
        });
        let mut encoder = device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            pass.set_pipeline(&pipeline);
            pass.set_bind_group(0, &bind_group, &[]);
            let [x, y, z] = task.workgroups;
            pass.dispatch_workgroups(x, y, z);
        }
        encoder.copy_buffer_to_buffer(&output, 0, &readback, 0, size);
        self.queue.submit([encoder.finish()]);
        readback
    }
}

/// Maps `buffer` and copies its bytes out.
async fn read_back(device: &wgpu::Device, buffer: &wgpu::Buffer) -> Result<Vec<u8>, String> {
    let (sender, receiver) = oneshot::channel();
    buffer.map_async(wgpu::MapMode::Read, .., move |result| {
        let _ = sender.send(result);
    });
    // Natively the callback runs inside poll; in the browser, from its event loop.
    #[cfg(not(target_arch = "wasm32"))]
    device
        .poll(wgpu::PollType::wait_indefinitely())
        .map_err(|e| format!("the GPU did not finish: {e}"))?;
    #[cfg(target_arch = "wasm32")]
    let _ = device;
    receiver
        .await
        .map_err(|_| "the GPU dropped the result".to_string())?
        .map_err(|e| format!("could not read the result back: {e}"))?;
    let bytes = buffer
        .get_mapped_range(..)
        .map_err(|e| format!("could not read the result back: {e}"))?
        .to_vec();
    buffer.unmap();
    Ok(bytes)
}
