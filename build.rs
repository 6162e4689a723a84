fn main() {
    // On Linux this also links with -z nodelete: the addon stays mapped after the env that loaded it exits.
    napi_build::setup();
}
