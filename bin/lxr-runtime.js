#!/usr/bin/env node
import "../dist/lxr-runtime.js";
