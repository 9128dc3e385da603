fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(podiam::app::run() as u8)
}
