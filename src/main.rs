fn main() {
    std::process::exit(pipeline::main());
}
