fn main() {
    widget::start();
}
