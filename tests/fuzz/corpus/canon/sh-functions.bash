#!/usr/bin/env bash
f() {
    local a=${1:-default} b=${2#prefix}
    [[ $a == *x* ]] && echo "${a//x/y}"
    echo $(( a + 1 ))   
}
arr=(one "two three" 'four')
for i in "${arr[@]}"; do f "$i"; done
