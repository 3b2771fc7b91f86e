/*
 * cm_plan_steps.c - rendered plan steps: freed, and written as JSON (cm-zke-plan, the
 * golden tests), plus the digest the plan-hash labels and file entries use.
 */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm/plan.h"
#include "cm_plan_int.h"

char *cm_plan_sha256_hex(const char *s, size_t hexlen)
{
        unsigned char md[32];
        unsigned int mdlen = 0;
        char *out = malloc(65);
        if (!out || !EVP_Digest(s, strlen(s), md, &mdlen, EVP_sha256(), NULL)) {
                free(out);
                return NULL;
        }
        for (unsigned i = 0; i < mdlen; i++)
                snprintf(out + 2 * i, 3, "%02x", md[i]);
        out[hexlen] = '\0';
        return out;
}

void cm_plan_steps_free(cm_plan_steps_t *steps)
{
        if (!steps)
                return;
        for (size_t i = 0; i < steps->count; i++) {
                cm_plan_step_t *st = &steps->steps[i];
                for (size_t j = 0; j < st->file_count; j++) {
                        free(st->files[j].path);
                        free(st->files[j].entry);
                        free(st->files[j].content);
                }
                for (size_t j = 0; j < st->container_count; j++) {
                        cm_plan_container_t *k = &st->containers[j];
                        free(k->name);
                        free(k->image);
                        free(k->hash);
                        free(k->pull);
                        free(k->inspect);
                        free(k->create);
                        free(k->remove);
                        free(k->start);
                }
                for (size_t j = 0; j < st->command_count; j++)
                        free(st->commands[j]);
                free(st->join.members);
                free(st->join.peer);
                free(st->join.add);
                free(st->join.health);
                free(st->files);
                free(st->containers);
                free(st->commands);
                free(st->plane);
                free(st->node);
                free(st->address);
        }
        free(steps->steps);
        free(steps->plan);
        free(steps->kubernetes_version);
        free(steps);
}

json_t *cm_plan_steps_to_json(const cm_plan_steps_t *steps, bool with_content)
{
        json_t *arr = json_array();
        json_t *root =
            json_pack("{s:s, s:s, s:o}", "plan", steps->plan, "kubernetesVersion",
                      steps->kubernetes_version, "steps", arr);
        if (!root)
                return NULL;
        for (size_t i = 0; i < steps->count; i++) {
                const cm_plan_step_t *st = &steps->steps[i];
                json_t *files = json_array(), *conts = json_array(), *cmds = json_array();
                json_array_append_new(
                    arr, json_pack("{s:s, s:s, s:s, s:o, s:o, s:o}", "plane", st->plane,
                                   "node", st->node, "address", st->address, "files",
                                   files, "containers", conts, "commands", cmds));
                for (size_t j = 0; j < st->file_count; j++) {
                        const cm_plan_file_t *f = &st->files[j];
                        char mode[8];
                        snprintf(mode, sizeof(mode), "%04o", f->mode);
                        json_t *jf =
                            json_pack("{s:s, s:s}", "path", f->path, "mode", mode);
                        if (f->kind == CM_PLAN_FILE_TEXT) {
                                char *h = cm_plan_sha256_hex(f->content, 64);
                                json_object_set_new(jf, "sha256",
                                                    json_string(h ? h : ""));
                                json_object_set_new(
                                    jf, "size",
                                    json_integer((json_int_t)strlen(f->content)));
                                if (with_content)
                                        json_object_set_new(jf, "content",
                                                            json_string(f->content));
                                free(h);
                        } else
                                json_object_set_new(
                                    jf, f->kind == CM_PLAN_FILE_CERT ? "cert" : "key",
                                    json_string(f->entry));
                        json_array_append_new(files, jf);
                }
                for (size_t j = 0; j < st->container_count; j++) {
                        const cm_plan_container_t *k = &st->containers[j];
                        json_array_append_new(
                            conts,
                            json_pack("{s:s, s:s, s:b, s:s, s:s, s:s, s:s, s:s, s:s}",
                                      "name", k->name, "image", k->image, "run", k->run,
                                      "hash", k->hash, "pull", k->pull, "inspect",
                                      k->inspect, "create", k->create, "remove",
                                      k->remove, "start", k->start));
                }
                for (size_t j = 0; j < st->command_count; j++)
                        json_array_append_new(cmds, json_string(st->commands[j]));
                if (st->join.add)
                        json_object_set_new(
                            json_array_get(arr, json_array_size(arr) - 1), "join",
                            json_pack("{s:s, s:s, s:s, s:s}", "members", st->join.members,
                                      "peer", st->join.peer, "add", st->join.add,
                                      "health", st->join.health));
        }
        return root;
}
