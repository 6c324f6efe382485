# mk/embed.mk - the embedding examples of examples/embed/, built against this tree's objects
# (tools/test-install.sh builds the same sources against an installed lucid via pkg-config).
#
#   $(BUILD)/bin/embed-c-only   c_only.c: lucid.h + lucid_nn.h only, no Lua
#   $(BUILD)/bin/embed-host     host.c:   its own lua_State, lucid_preload, model.lua
#   $(BUILD)/bin/embed-threads  threads.c: two pthreads, one lua_State each (train.lua)
#   $(BUILD)/bin/embed-sandbox  sandbox.c: an untrusted script under a locked file policy and
#                               memory limit, in a lua_State with the safe libraries only
#   $(BUILD)/bin/embed-onnx-host onnx_host.c: an ONNX model exported from PyTorch run from C, no Lua
#   $(BUILD)/bin/embed-classify classify.c: a Lua-defined model (examples/fashion_model.lua) and a
#                               checkpoint of examples/fashion_mnist.lua, fed images read in C
#
# tools/run-tests.sh runs them. They are order-only prerequisites of the C test binary, so
# `make` / `make test` build them and `make check-asan` builds them with the sanitizers (its
# sub-make builds $(BUILD)/bin/lucid-tests with BUILD=build-asan).

EMBED_BINS = $(BUILD)/bin/embed-c-only $(BUILD)/bin/embed-host $(BUILD)/bin/embed-threads \
             $(BUILD)/bin/embed-classify $(BUILD)/bin/embed-sandbox $(BUILD)/bin/embed-onnx-host
EMBED_LUA_LINK = $(LUA_OBJ) $(BUILD)/obj/gen/embedded_lua.o $(LIB)

.PHONY: embed-examples
embed-examples: $(EMBED_BINS)

$(CTESTS): | $(EMBED_BINS)

# The objects come from the Makefile's $(BUILD)/obj/%.o rule (with its dependency files).
$(BUILD)/bin/embed-c-only: $(BUILD)/obj/examples/embed/c_only.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $< $(LIB) $(LDLIBS_ALL)

$(BUILD)/bin/embed-onnx-host: $(BUILD)/obj/examples/embed/onnx_host.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $< $(LIB) $(LDLIBS_ALL)

$(BUILD)/bin/embed-host: $(BUILD)/obj/examples/embed/host.o $(EMBED_LUA_LINK)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $< $(EMBED_LUA_LINK) $(LDLIBS_ALL) -ldl

$(BUILD)/bin/embed-threads: $(BUILD)/obj/examples/embed/threads.o $(EMBED_LUA_LINK)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $< $(EMBED_LUA_LINK) $(LDLIBS_ALL) -ldl

$(BUILD)/bin/embed-classify: $(BUILD)/obj/examples/embed/classify.o $(EMBED_LUA_LINK)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $< $(EMBED_LUA_LINK) $(LDLIBS_ALL) -ldl

$(BUILD)/bin/embed-sandbox: $(BUILD)/obj/examples/embed/sandbox.o $(EMBED_LUA_LINK)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $< $(EMBED_LUA_LINK) $(LDLIBS_ALL) -ldl
